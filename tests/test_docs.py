"""Every command in the documentation is run by a test.

Commands are the lines of fenced code blocks in ``README.md`` and ``docs/*.md`` that call
``python -m neurodecode...`` or ``bash scripts/...`` (continuation lines joined, comments
dropped). Each must appear in exactly one of three lists below, else
``test_every_documented_command_is_checked`` fails and names it:

* ``RUN``: executed as a subprocess, as documented, with placeholders (``patient.edf``,
  ``runs/seizure/<time>``, a Hub id, ...) replaced by real files made here and, where the
  documented job would take minutes, a few speed overrides appended;
* ``COMPOSE``: training commands whose job takes minutes to hours or downloads gigabytes;
  their Hydra config is composed in-process from exactly the documented overrides, which
  checks every recipe, group option and key they name (the training itself is tested by
  tests/test_train.py and tests/tasks/);
* ``EXEMPT``: commands that cannot run here, each with the reason.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, require_shared

DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
_COMMAND = re.compile(r"(^|\s|/)(python -m neurodecode|bash scripts/)")

FAST_TRAINING = [
    "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
    "trainer.enable_progress_bar=false",
]  # fmt: skip

# documented command -> speed overrides appended (placeholders are replaced, see _argv)
RUN: dict[str, list[str]] = {
    "python -m neurodecode.data fetch simulated": [],
    "python -m neurodecode.data fetch simulated generator_params.task=motor_imagery": [
        "generator_params.n_subjects=2",
        "generator_params.n_sessions=1",
        "generator_params.n_runs=1",
    ],  # fmt: skip
    "python -m neurodecode.data fetch eegmmidb subjects=[1] runs=[4,8,12]": [],
    "NEURODECODE_MIRROR=http://eeg-mirror.example.org NEURODECODE_HOME=/scratch/$USER/neurodecode "
    "python -m neurodecode.data fetch eegmmidb subjects=[1] runs=[4,8,12]": [],
    "python -m neurodecode.train recipe=seizure data=simulated model.size=tiny "
    "trainer.max_epochs=1": FAST_TRAINING,
    "python -m neurodecode.hub export run=runs/seizure/<time> out=exported/": [],
    "python -m neurodecode.predict checkpoint=my-lab/seizure-dbc input=patient.edf "
    "output=predictions/": [],
    "python -m neurodecode.predict checkpoint=runs/seizure/2026-11-22_11-05-34 "
    "input=bids_root/ output=predictions/ threads=1": [],
    "python -m neurodecode.train recipe=seizure --help": [],
    "python -m neurodecode.train recipe=motor_imagery --help": [],
    "python -m neurodecode.train --help": [],
}
# the order the RUN commands execute in: later ones use the run folder and export of earlier ones
RUN_ORDER = list(RUN)

COMPOSE = [
    "python -m neurodecode.train recipe=seizure",
    "python -m neurodecode.train recipe=motor_imagery data=simulated model=eegnet seed=1",
    "python -m neurodecode.train recipe=seizure --cfg job",
    # classical baselines: run through the recipes by tests/test_baselines.py
    "python -m neurodecode.train recipe=motor_imagery data=simulated model=csp_lda",
    "python -m neurodecode.train recipe=seizure data=simulated model=eeg_features "
    "model.classifier=gboost",
    "python -m neurodecode.train recipe=motor_imagery data=simulated "
    "baseline=[csp_lda,tangent_space]",
    "python -m neurodecode.train recipe=seizure data=simulated model.size=tiny --cfg job",
    ".venv/bin/python -m neurodecode.train recipe=seizure data=simulated --cfg job",
    "python -m neurodecode.train recipe=seizure init_from=hf://my-lab/pretrained-encoder@v1.0",
    "NEURODECODE_MIRROR=../shared/data/mirror python -m neurodecode.train recipe=pretrain",
    "python -m neurodecode.train recipe=pretrain trainer.max_steps=50",
    "python -m neurodecode.train recipe=seizure data=simulated init_from=runs/pretrain/<time>",
    "python -m neurodecode.train recipe=motor_imagery init_from=hf://org/name "
    "finetune.strategy=frozen",
    "python -m neurodecode.train recipe=seizure data=simulated init_from=runs/pretrain/<time> "
    "finetune.strategy=ridge",
    "python -m neurodecode.train recipe=seizure data=simulated init_from=runs/pretrain/<time> "
    "finetune.strategy=lora",
    "python -m neurodecode.train recipe=motor_imagery init_from=hf://org/name "
    "finetune.strategy=lora 'finetune.targets=[qkv,out,mlp.0,mlp.3]' finetune.adapter.rank=16",
    "python -m neurodecode.train recipe=motor_imagery init_from=hf://org/name "
    "finetune.strategy=two_stage finetune.head_epochs=3",
    "python -m neurodecode.train recipe=pretrain trainer.max_steps=250 "
    "'data.datasets.eegmmidb.prepare.runs=[1,5,6,9,10,13,14]' model.dim=32 model.depth=2 "
    "model.n_heads=2 model.head_hidden=32 task.module.target_norm=none "
    "task.module.spectral_weight=1.0",
    "python -m neurodecode.train recipe=pretrain data.datasets.bonn.weight=0 model.dim=32 "
    "model.depth=2 model.n_heads=2 model.head_hidden=32 trainer.max_steps=384",
    "python -m neurodecode.train recipe=seizure data=bonn preprocess=bonn task=classification "
    "task.class_weights=balanced '~preprocess.windows.label_map' "
    "'+preprocess.windows.label_map={S: 1, Z: 0, O: 0, N: 0, F: 0}' "
    "preprocess.windows.stride_s=4.0 model=patch_conformer model.dim=32 model.depth=2 "
    "model.n_heads=2 model.head_hidden=32 trainer.max_epochs=10 data.datamodule.batch_size=48 "
    "data.datamodule.num_workers=0 seed=0 init_from=runs/pretrain/<time>",
]

EXEMPT = {
    "python -m neurodecode.predict checkpoint=my-lab/seizure-dbc stream=lsl:EEG": (
        "needs a live LSL outlet; the stream command's file replay is run by "
        "tests/predict/test_stream_command.py and the LSL reader's refusals by "
        "tests/predict/test_predict.py"
    ),
    "python -m neurodecode.predict checkpoint=runs/seizure/<run> "
    "stream=file:../shared/data/excerpts/chbmit/chb01_03_seizure_crop.edf speed=10": (
        "a template over a run folder; the same command on both real CHB-MIT crops is run by "
        "tests/predict/test_stream_command.py"
    ),
    "python -m neurodecode.train recipe=motor_imagery '+data.prepare.subjects=[1]' "
    "'+data.prepare.runs=[3,4,7,8,11,12]' data.datamodule.split=within_session "
    "data.datamodule.fold=$s seed=$s data.datamodule.batch_size=16 model=patch_conformer "
    "model.dim=32 model.depth=2 model.n_heads=2 model.head_hidden=32 trainer.max_epochs=20 "
    "[init_from=<pretrain run>/checkpoints/best-step=000096.ckpt]": (
        "a template over seeds ($s) with an optional init_from in brackets; the fine-tuning "
        "path it uses is run by tests/tasks/test_pretrain.py and tests/test_real_data_checks.py"
    ),
    "python -m neurodecode.data fetch chbmit subjects=[1,2]": (
        "downloads about 4 GB from PhysioNet; fetching is tested against loopback servers "
        "(tests/data/test_fetch.py)"
    ),
    "python -m neurodecode.data fetch tusz root=/data/tuh_eeg_seizure/v2.0.3 split=[eval]": (
        "needs a TUSZ copy obtained under its data-use agreement"
    ),
    "python -m neurodecode.hub push run=runs/seizure/2026-11-22_11-05-34 "
    "repo_id=my-lab/seizure-dbc private=true": "uploads to the Hugging Face Hub (network, token)",
    "python -m neurodecode.hub push run=exported/ repo_id=my-lab/seizure-dbc": (
        "uploads to the Hugging Face Hub; push and pull are tested against a local Hub "
        "mirror in tests/hub/"
    ),
    "python -m neurodecode.hub pull repo_id=my-lab/seizure-dbc revision=v1.0": (
        "downloads from the Hugging Face Hub; tested against a local Hub mirror in tests/hub/"
    ),
    "bash scripts/train.sh recipe=seizure data=simulated": (
        "scripts/setup.sh installs into .venv first; the same training is run by "
        "tests/test_train.py"
    ),
    "bash scripts/test.sh": "is the whole test suite",
    "bash scripts/setup.sh": "installs packages (network); not run from tests",
}


def documented_commands() -> dict[str, list[str]]:
    """Every command in a fenced block of the docs -> the files that show it."""
    found: dict[str, list[str]] = {}
    for path in DOC_FILES:
        for block in _FENCE.findall(path.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                command = " ".join(line.split("  #")[0].split()).removeprefix("$ ")
                if _COMMAND.search(command) and not command.startswith("#"):
                    found.setdefault(command, []).append(path.name)
    return found


def test_every_documented_command_is_checked():
    listed = set(RUN) | set(COMPOSE) | set(EXEMPT)
    found = documented_commands()
    unchecked = {command: files for command, files in found.items() if command not in listed}
    assert not unchecked, (
        "documented commands not run by any test (add them to RUN, COMPOSE or EXEMPT in "
        f"tests/test_docs.py): {unchecked}"
    )
    stale = listed - set(found)
    assert not stale, f"commands listed in tests/test_docs.py but no longer documented: {stale}"


def _split(command: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` environment assignments, and the argument list."""
    tokens = shlex.split(command)
    env = {}
    while tokens and re.fullmatch(r"[A-Z_]+=.*", tokens[0]):
        name, _, value = tokens.pop(0).partition("=")
        env[name] = value
    return env, tokens


@pytest.mark.parametrize("command", COMPOSE)
def test_documented_training_command_composes(command):
    from hydra import compose, initialize_config_dir

    from neurodecode.resources import resource_dir
    from neurodecode.run.recipes import register_recipes

    register_recipes()

    _, tokens = _split(command.replace("<time>", "2026-11-22_11-05-34"))  # a placeholder
    assert tokens[0].endswith("python") and tokens[1:3] == ["-m", "neurodecode.train"], command
    overrides = [t for t in tokens[3:] if t not in ("--cfg", "job")]
    with initialize_config_dir(str(resource_dir("configs")), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    assert cfg.task.module._target_


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A home for caches, the reference recordings, and the places documented paths map to."""
    root = tmp_path_factory.mktemp("docs")
    chbmit = require_shared("excerpts/chbmit")
    bids = root / "bids_root" / "sub-01" / "eeg"
    bids.mkdir(parents=True)
    for name in ("chb01_03_seizure_crop.edf", "chb01_03_background_crop.edf"):
        (bids / name).symlink_to(chbmit / name)
    return {
        "root": root,
        "home": root / "home",
        "mirror": require_shared("mirror"),
        "placeholders": {
            "patient.edf": str(chbmit / "chb01_03_seizure_crop.edf"),
            "bids_root/": str(root / "bids_root"),
            "predictions/": str(root / "predictions"),
            "exported/": str(root / "exported"),
            "my-lab/seizure-dbc": str(root / "exported"),  # the export stands in for the Hub
        },
    }


def _argv(command: str, workspace: dict) -> tuple[dict[str, str], list[str]]:
    env, tokens = _split(command)
    env = dict(os.environ, NEURODECODE_HOME=str(workspace["home"]))
    if "NEURODECODE_MIRROR" in command or "eegmmidb" in command:
        env["NEURODECODE_MIRROR"] = str(workspace["mirror"])  # the reference mirror, a folder
    placeholders = dict(workspace["placeholders"])
    runs = sorted((workspace["root"] / "runs" / "seizure").glob("*"))
    if runs:
        placeholders["runs/seizure/<time>"] = str(runs[-1])
        placeholders["runs/seizure/2026-11-22_11-05-34"] = str(runs[-1])
    argv = []
    for token in tokens:
        key, sep, value = token.partition("=")
        value = placeholders.get(value, value) if sep else value
        argv.append(f"{key}{sep}{value}" if sep else token)
    assert argv[:2] == ["python", "-m"], command
    argv = [sys.executable, *argv[1:], *RUN[command]]
    if argv[3:4] and argv[2] == "neurodecode.train" and "--help" not in argv:
        argv.append(f"runs_dir={workspace['root'] / 'runs'}")
    return env, argv


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_ORDER)
def test_documented_command_runs(command, workspace):
    env, argv = _argv(command, workspace)
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        argv, env=env, cwd=workspace["root"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    if "neurodecode.predict" in command:
        assert list((workspace["root"] / "predictions").rglob("*_events.tsv"))
        assert (workspace["root"] / "predictions" / "summary.json").is_file()
    if "hub export" in command:
        assert (workspace["root"] / "exported" / "model.safetensors").is_file()
