"""init_from sources that are damaged give a CheckpointError naming the file."""

from __future__ import annotations

import pytest

from neurodecode.errors import CheckpointError
from neurodecode.finetune import read_init_source
from neurodecode.hub import build_model, export_model

NAMES = ["Fp1", "Fp2", "C3", "C4"]


@pytest.fixture()
def export_dir(tmp_path):
    model = build_model(
        "dual_branch_conformer", n_chans=4, n_outputs=2, n_times=128, sfreq=128.0, size="tiny"
    )
    return export_model(model, tmp_path / "export", ch_names=NAMES)


def test_altered_weights_are_refused(export_dir):
    weights = export_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        read_init_source(export_dir)
    assert str(weights) in str(err.value)


def test_missing_weights_are_refused(export_dir):
    (export_dir / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights file is missing"):
        read_init_source(export_dir)


def test_a_checkpoint_that_is_not_weights_only_is_refused(tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights only") as err:
        read_init_source(bad)
    assert str(bad) in str(err.value)
