"""The ``neurodecode`` command: one entry point, one ``key=value`` style, plain-words errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib

import pytest
from omegaconf import OmegaConf

import neurodecode.cli
from neurodecode.cli import SUMMARIES, main
from neurodecode.cli.options import (
    Option,
    merge_overrides,
    parse_options,
    report_errors,
    split_overrides,
)
from neurodecode.errors import ConfigError, RecordingError
from neurodecode.models.energy import COST_MODELS
from tests.conftest import REPO_ROOT, require_shared

OPTIONS = (
    Option("data", required=True),
    Option("n", int, default=3),
    Option("rate", float),
    Option("private", bool, default=False),
    Option("mode", choices=("direct", "delta")),
    Option("runs", object),
)


def test_the_console_script_is_the_command_line_main():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["neurodecode"] == "neurodecode.cli:main"
    assert scripts["neurodecode-train"] == "neurodecode.train:main"
    assert neurodecode.cli.main is main


def test_help_names_every_command_and_each_command_has_help(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert list(SUMMARIES) == ["train", "predict", "data", "hub", "benchmark", "score", "szcore"]
    for name in SUMMARIES:
        assert f"  {name} " in text
    for name in ("predict", "data", "hub", "benchmark", "score", "szcore"):
        assert main([name, "--help"]) == 0
        assert f"usage: neurodecode {name}" in capsys.readouterr().out
    assert main([]) == 2  # no command: the help, as a refusal


def test_train_help_goes_through_the_training_entry_point(capsys):
    argv = list(sys.argv)
    assert main(["train", "--help"]) == 0
    assert "recipes:" in capsys.readouterr().out
    assert sys.argv == argv  # restored after Hydra read it


def test_train_refuses_mistyped_keys_and_options_then_hands_over_to_hydra(capsys):
    assert main(["train", "recipe=seizure", "trainer.max_epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'trainer.max_epoch'" in err
    assert "did you mean 'max_epochs'?" in err
    assert main(["train", "recipe=seizure", "data=simulated", "data.prepare.subject=[1]"]) == 2
    assert "+data.prepare.subject=..." in capsys.readouterr().err  # nothing close: add it
    assert main(["train", "recipe=seizure", "model=spikng"]) == 2
    err = capsys.readouterr().err
    assert "group 'model' has no option 'spikng'; did you mean 'spiking'?" in err
    assert (
        main(["train", "recipe=seizure", "data=simulated", "model.size=tiny", "--cfg", "job"]) == 0
    )
    assert "size: tiny" in capsys.readouterr().out


def test_unknown_commands_are_refused_with_the_closest_names(capsys):
    assert main(["trian"]) == 2
    assert "did you mean 'train'?" in capsys.readouterr().err
    assert main(["hub", "psh", "run=x"]) == 1
    assert "did you mean 'push'?" in capsys.readouterr().err
    assert main(["data", "fecth", "eegmmidb"]) == 1
    assert "did you mean 'fetch'?" in capsys.readouterr().err
    assert main(["data", "fetch", "subjects=[1]"]) == 1
    assert "the first argument must be the <dataset>" in capsys.readouterr().err
    assert main(["data", "info", "a.edf", "anotation_format=file"]) == 1
    assert "did you mean 'annotation_format'" in capsys.readouterr().err


def test_options_are_typed_defaulted_and_checked():
    values = parse_options(
        ["data=S001.edf", "rate=2.5", "private=true", "runs=[4,8]"], OPTIONS, "x"
    )
    assert values == {"data": "S001.edf", "n": 3, "rate": 2.5, "private": True, "runs": [4, 8]}
    assert parse_options(["data=1", "n=7"], OPTIONS, "x") == {"data": "1", "n": 7, "private": False}
    refusals = {
        "missing \\['data'\\]": ["n=1"],
        "unknown option\\(s\\) \\['dat'\\].*did you mean 'data'": ["dat=x"],
        "n must be a whole number, got '1.5'": ["data=x", "n=1.5"],
        "private must be true or false, got 'maybe'": ["data=x", "private=maybe"],
        "mode 'dleta' is not one of the choices.*did you mean 'delta'": ["data=x", "mode=dleta"],
        "expected key=value, got 'data'": ["data"],
        "data is given twice": ["data=a", "data=b"],
    }
    for message, items in refusals.items():
        with pytest.raises(ConfigError, match=message):
            parse_options(items, OPTIONS, "x")
    assert split_overrides(["a.b=c=d", "e="], "x") == {"a.b": "c=d", "e": ""}


def test_config_overrides_reach_nested_keys_and_suggest_them():
    config = OmegaConf.create({"input": "???", "post": {"threshold": None, "merge_gap_s": 1.0}})
    merged = merge_overrides(config, ["input=a.edf", "post.threshold=0.4"], "x")
    assert merged.input == "a.edf" and merged.post.threshold == 0.4 and merged.post.merge_gap_s == 1
    with pytest.raises(ConfigError, match="treshold: did you mean 'post.threshold'"):
        merge_overrides(config, ["input=a", "treshold=0.4"], "x")
    with pytest.raises(ConfigError, match="missing input.*set input=..."):
        merge_overrides(config, [], "x")
    for bad in ("input=[1", "post={a: 1}"):
        with pytest.raises(ConfigError, match="invalid setting"):
            merge_overrides(config, [bad], "x")


def test_errors_print_as_one_paragraph_with_a_status(capsys):
    def fail() -> int:
        raise RecordingError("truncated\nafter 3 s", path="a.edf", hint="re-export it")

    def refuse() -> int:
        raise ConfigError("bad key")

    assert report_errors(fail, config_status=2) == 1
    assert capsys.readouterr().err == "error: a.edf: truncated after 3 s (re-export it)\n"
    assert report_errors(refuse, config_status=2) == 2


@pytest.mark.parametrize(
    "argv", [["neurodecode", "--help"], ["neurodecode.hub", "--help"], ["neurodecode.data", "-h"]]
)
def test_module_forms_print_their_help(argv):
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_a_failing_command_prints_no_traceback():
    command = [sys.executable, "-m", "neurodecode", "benchmark", "energy", "data=x", "modle=1"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: neurodecode benchmark energy: unknown option(s) ['modle'] "
        "(modle: did you mean 'model'?)"
    ]


def test_energy_refuses_unknown_or_missing_options(capsys):
    assert main(["benchmark", "energy", "data=x.edf", "modle=spiking"]) == 1
    assert "did you mean 'model'?" in capsys.readouterr().err
    assert main(["benchmark", "energy", "model=spiking"]) == 1
    assert "missing ['data']" in capsys.readouterr().err
    assert main(["benchmark", "energy", "data=x.edf", "model=spikin"]) == 1
    assert "model 'spikin' is not one of the choices (did you mean 'spiking'" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_energy_table_and_json_of_analog_and_spiking_models_on_real_eeg(tmp_path, capsys):
    path = require_shared("mirror/eegmmidb/S001/S001R04.edf")
    out = tmp_path / "energy.json"
    status = main(["benchmark", "energy", f"data={path}", "model=spiking", "size=tiny",
                   "n_windows=8", "batch_size=4", "window_s=2", f"out={out}"])  # fmt: skip
    assert status == 0
    table = capsys.readouterr().out
    assert "| | dual_branch_conformer | spiking_dual_branch_conformer |" in table
    assert "Firing rates, spiking_dual_branch_conformer" in table
    header = "| cost model | dual_branch_conformer (µJ) | spiking_dual_branch_conformer (µJ) |"
    assert header in table
    assert all(f"\n| {name} | " in table for name in COST_MODELS)
    result = json.loads(out.read_text())
    analog, spiking = result["reports"]
    assert result["signal"] == {"n_chans": 64, "n_times": 320, "sfreq": 160.0}
    assert analog["model"] == "dual_branch_conformer" and analog["acs"] == 0
    assert analog["firing_rates"] == {} and analog["mean_firing_rate"] is None
    assert spiking["time_steps"] == 4 and spiking["n_samples"] == 8
    assert spiking["acs"] > 0 and spiking["macs"] > 0  # analog tokenizers, spiking encoders
    rates = list(spiking["firing_rates"].values())
    assert len(rates) > 10 and all(0 <= r <= 1 for r in rates) and max(rates) > 0
    for report in (analog, spiking):
        rows = {row["cost_model"]: row for row in report["energy"]}
        assert list(rows) == list(COST_MODELS)
        expected = report["macs"] * 4.6 + report["acs"] * 0.9  # FP32 at 45 nm, pJ
        assert rows["fp32"]["total_uj"] == pytest.approx(expected * 1e-6)
        assert rows["fp32+sram"]["total_uj"] > rows["fp32"]["total_uj"] > 0
        assert rows["fp32"]["total_uj"] > rows["fp16"]["total_uj"] > rows["int8"]["total_uj"]
    encoder_layers = [x for x in spiking["layers"] if "encoder.layers" in x["name"]]
    assert sum(x["macs"] for x in encoder_layers) == 0  # spike-driven inside the encoders
    assert all(math.isfinite(x["input_rate"]) for x in encoder_layers if x["acs"] > 0)


@pytest.mark.slow
def test_energy_cost_model_option_picks_one_model(capsys):
    path = require_shared("mirror/eegmmidb/S001/S001R04.edf")
    status = main(["benchmark", "energy", f"data={path}", "model=analog", "size=tiny",
                   "n_windows=2", "window_s=1", "cost_model=int8+sram"])  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "\n| int8+sram | " in printed and "\n| fp32 | " not in printed
    result = json.loads(printed[printed.index("\n{") :])
    for report in result["reports"]:
        assert [row["cost_model"] for row in report["energy"]] == ["int8+sram"]
    assert main(["benchmark", "energy", "data=x.edf", "cost_model=fp64"]) == 1
    assert "cost_model 'fp64' is not one of the choices" in capsys.readouterr().err


def test_help_answers_without_importing_the_heavy_stack() -> None:
    """``neurodecode --help`` imports no command module (torch, MNE, Lightning stay out)."""
    code = (
        "import sys; from neurodecode.cli import main; main(['--help']); "
        "print(sorted(m for m in ('torch', 'mne', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
