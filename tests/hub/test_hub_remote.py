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

from neurodecode.errors import CheckpointError, ContractError
from neurodecode.hub import build_model, check_contract, export_model, from_pretrained, push_to_hub
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
    with torch.no_grad():
        out = pretrained.model(torch.from_numpy(np.load(sys.argv[2])))
    np.save(sys.argv[3], out.numpy())
    """
)


@pytest.mark.slow
def test_recipe_run_pushed_then_pulled_in_a_fresh_process_is_bit_identical_on_real_eeg(
    hub, tmp_path, monkeypatch, capsys, neurodecode_home
):
    from huggingface_hub import constants

    from neurodecode import train
    from neurodecode.data.artifacts import RecordingQC
    from neurodecode.data.io import read_recording
    from neurodecode.data.preprocess import load_preprocess_config, preprocess_recording
    from neurodecode.hub.__main__ import main

    # 1. a (very short) seizure recipe run on simulated data
    overrides = [
        "recipe=seizure",
        "data=simulated",
        "model.size=tiny",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
    ]
    results = train.run(train.compose(overrides), tmp_path / "run")
    checkpoint = tmp_path / "run" / results["checkpoints"]["best"]

    # 2. published with the command line (in this process; HF_ENDPOINT is the loopback Hub)
    assert main(["push", f"run={tmp_path / 'run'}", "repo_id=lab/seizure", "private=true"]) == 0
    commit = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["commit"]
    assert hub.repos["lab/seizure"].refs["main"] == commit
    card = hub.repos["lab/seizure"].commits[commit].files["README.md"].decode()
    assert "not a medical device" in card and "| test.window.accuracy |" in card

    # 3. a real CHB-MIT seizure excerpt: 23 channels at 256 Hz do not fit the model...
    pretrained = from_pretrained("lab/seizure")
    recording = read_recording(require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf"))
    with pytest.raises(ContractError, match="expects 18 channels.*extra.*256 Hz"):
        check_contract(pretrained, ch_names=recording.ch_names, sfreq=recording.sfreq)
    # ... until the exported preprocessing config is replayed
    preprocessing = load_preprocess_config("default", pretrained.preprocessing)
    prepared = preprocess_recording(recording, preprocessing, RecordingQC("chb01_03", "crop"))
    signal = prepared.recording
    check_contract(
        pretrained, ch_names=signal.ch_names, sfreq=signal.sfreq, n_times=pretrained.n_times
    )
    window = np.ascontiguousarray(signal.signal[None, :, : pretrained.n_times], dtype=np.float32)
    np.save(tmp_path / "window.npy", window)

    # the encoder as trained, straight from the Lightning checkpoint
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    arguments = dict(pretrained.config["model"])
    trained = build_model(arguments.pop("_target_"), **arguments).eval()
    trained.load_state_dict({k[len("encoder."):]: v for k, v in state.items()
                             if k.startswith("encoder.")})  # fmt: skip
    with torch.no_grad():
        expected = trained(torch.from_numpy(window)).numpy()

    # 4. a fresh process pulls it through huggingface_hub (HF_ENDPOINT from the environment)
    predict = [
        sys.executable,
        "-c",
        _PREDICT,
        "lab/seizure",
        str(tmp_path / "window.npy"),
        str(tmp_path / "fresh.npy"),
    ]
    fresh = subprocess.run(
        predict, env=subprocess_env(), capture_output=True, text=True, timeout=180
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "fresh.npy"), expected)

    # 5. offline, from the cache (HF_HUB_OFFLINE=1 sets this flag at import)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with torch.no_grad():
        offline = from_pretrained("lab/seizure").model(torch.from_numpy(window)).numpy()
    assert np.array_equal(offline, expected)
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*OFFLINE"):
        from_pretrained("lab/never-downloaded")


def test_command_line_pull_and_bad_arguments(hub, tiny_model, tmp_path, capsys):
    from neurodecode.hub.__main__ import main

    info = push_to_hub(export_model(tiny_model(), tmp_path, ch_names=CH_NAMES), "lab/cli")
    assert main(["pull", "repo_id=lab/cli", f"revision={info.oid}"]) == 0
    pulled = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pulled["ch_names"] == CH_NAMES and pulled["folder"].endswith(info.oid)
    assert main(["push", "run=somewhere"]) == 1
    assert "missing ['repo_id']" in capsys.readouterr().err
    assert main(["pull", "repo_id=lab/absent"]) == 1
    assert "no model repository 'lab/absent'" in capsys.readouterr().err
    assert main(["push", "run=x", "repo_id=a/b", "private=maybe"]) == 1
    assert "private must be true or false" in capsys.readouterr().err
