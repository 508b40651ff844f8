"""Publishing and downloading with huggingface_hub's real client against 127.0.0.1 servers.

Two servers: the Hub-protocol test server (``hub_server.py``) for push-then-pull, and olah
(a self-hosted Hub mirror) serving a git repository from a local folder for the download
path. Fresh processes read ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` from the environment, as
users set them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml

from neurodecode.errors import CheckpointError
from neurodecode.hub import build_model, export_model, from_pretrained, push_to_hub
from tests.conftest import require_shared
from tests.hub.hub_helpers import CH_NAMES, subprocess_env

pytestmark = pytest.mark.network


def test_push_then_pull_with_revisions(hub, tiny_model, tmp_path):
    model = tiny_model().eval()
    first = export_model(
        model,
        tmp_path / "v1",
        ch_names=CH_NAMES,
        task="motor_imagery",
        dataset="eegmmidb",
        metrics={"test": {"accuracy": 0.7}},
    )
    info1 = push_to_hub(first, "lab/tiny", private=True)
    assert hub.repos["lab/tiny"].private

    pretrained = from_pretrained("lab/tiny")
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        assert torch.equal(pretrained.model(x), model(x))
    assert pretrained.source.name == info1.oid  # a snapshot of exactly that commit

    with torch.no_grad():
        model.head.bias.add_(1.0)
    second = export_model(
        model,
        tmp_path / "v2",
        ch_names=CH_NAMES,
        task="motor_imagery",
        dataset="eegmmidb",
        metrics={"test": {"accuracy": 0.8}},
    )
    info2 = push_to_hub(second, "lab/tiny", commit_message="retrained")
    assert info2.oid != info1.oid
    assert hub.repos["lab/tiny"].commits[info2.oid].message == "retrained"

    latest, pinned = from_pretrained("lab/tiny"), from_pretrained(f"hf://lab/tiny@{info1.oid}")
    assert latest.config["metrics"] == {"test": {"accuracy": 0.8}}
    assert pinned.config["metrics"] == {"test": {"accuracy": 0.7}}
    with torch.no_grad():
        assert torch.equal(latest.model(x), model(x))
        assert not torch.equal(pinned.model(x), model(x))
    card = (latest.source / "README.md").read_text()
    assert (
        yaml.safe_load(card.split("---\n")[1])["model-index"][0]["results"][0]["metrics"][0][
            "value"
        ]
        == 0.8
    )


def test_missing_repository_and_revision_are_plain_errors(hub, tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="no model repository 'lab/absent'.*spelling"):
        from_pretrained("lab/absent")
    push_to_hub(export_model(tiny_model(), tmp_path, ch_names=CH_NAMES), "lab/revs")
    with pytest.raises(CheckpointError, match="has no revision 'v9'.*branch, tag or commit"):
        from_pretrained("lab/revs", revision="v9")


def test_pickle_only_repository_is_refused(hub, tiny_model, tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "pytorch_model.bin")
    from huggingface_hub import HfApi

    HfApi().create_repo("lab/pickled")
    HfApi().upload_file(
        path_or_fileobj=tmp_path / "pytorch_model.bin",
        path_in_repo="pytorch_model.bin",
        repo_id="lab/pickled",
    )
    with pytest.raises(CheckpointError, match=r"only pickle-based .*pytorch_model\.bin"):
        from_pretrained("lab/pickled")
    assert not any(
        path.endswith(".bin") and method == "GET" and "/resolve/" in path
        for method, path in hub.requests
    )  # never even downloaded


def test_download_through_olah_mirror(olah_mirror, tiny_model, tmp_path):
    model = tiny_model().eval()
    folder = export_model(model, tmp_path / "export", ch_names=CH_NAMES)
    commit = olah_mirror("mirrored/tiny", folder)
    pretrained = from_pretrained("mirrored/tiny", revision=commit)
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        assert torch.equal(pretrained.model(x), model(x))
    with pytest.raises(CheckpointError, match="no model repository"):
        from_pretrained("mirrored/absent")


_PREDICT = textwrap.dedent(
    """
    import sys, numpy as np, torch, neurodecode
    pretrained = neurodecode.from_pretrained(sys.argv[1])
    neurodecode.hub.check_contract(pretrained, ch_names=sys.argv[3].split(","),
                                   sfreq=float(sys.argv[4]), n_times=int(sys.argv[5]))
    with torch.no_grad():
        out = pretrained.model(torch.from_numpy(np.load(sys.argv[2])))
    np.save(sys.argv[2].replace("window", "out-" + sys.argv[6]), out.numpy())
    """
)


@pytest.mark.slow
def test_cli_push_and_fresh_process_pull_are_bit_identical_on_a_real_recording(
    hub, tmp_path, monkeypatch
):
    import mne
    from huggingface_hub import constants

    edf = require_shared("mirror/eegmmidb/S001/S001R04.edf")
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    picks = ["Fc3.", "Fcz.", "Fc4.", "C3..", "Cz..", "C4..", "Cp3.", "Cpz.", "Cp4."]
    names = [name.strip(".").capitalize() for name in picks]
    sfreq, n_times = raw.info["sfreq"], 320
    window = raw.get_data(picks=picks, start=1600, stop=1600 + n_times)[None] * 1e6  # µV
    window = window.astype(np.float32)
    np.save(tmp_path / "window.npy", window)

    torch.manual_seed(0)
    arch = dict(n_chans=len(names), n_outputs=3, n_times=n_times, sfreq=sfreq, size="tiny")
    model = build_model("dual_branch_conformer", **arch).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(window)).numpy()
    export = export_model(
        model,
        tmp_path / "export",
        ch_names=names,
        labels=["T0", "T1", "T2"],
        preprocessing={"units": "uV"},
        task="motor_imagery",
        dataset="eegmmidb",
    )

    cli = [
        sys.executable,
        "-m",
        "neurodecode.hub",
        "push",
        f"run={export}",
        "repo_id=lab/conformer",
        "private=true",
    ]
    push = subprocess.run(cli, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert push.returncode == 0, push.stderr
    commit = json.loads(push.stdout.strip().splitlines()[-1])["commit"]
    assert hub.repos["lab/conformer"].refs["main"] == commit

    predict = [
        sys.executable,
        "-c",
        _PREDICT,
        "lab/conformer",
        str(tmp_path / "window.npy"),
        ",".join(names),
        str(sfreq),
        str(n_times),
        "fresh",
    ]
    fresh = subprocess.run(
        predict, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert fresh.returncode == 0, fresh.stderr
    assert np.array_equal(np.load(tmp_path / "out-fresh.npy"), expected)

    # Offline, from the cache the fresh process filled (HF_HUB_OFFLINE=1 sets this flag).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    offline = from_pretrained("lab/conformer")
    with torch.no_grad():
        assert np.array_equal(offline.model(torch.from_numpy(window)).numpy(), expected)
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*OFFLINE"):
        from_pretrained("lab/never-downloaded")
