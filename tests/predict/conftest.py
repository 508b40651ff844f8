"""A small seizure detector trained for real on simulated recordings, exported once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SIMULATION = {"task": "seizure", "seed": 3, "n_subjects": 2, "n_runs": 1, "duration_s": 240}
RECIPE_WINDOWS = {
    "resample": 128.0,
    "windows": {"stride_s": 2.0, "label_map": {"background": 0, "sz": 1}},
}


@pytest.fixture(scope="session")
def simulated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated 4-min seizure recordings in a BIDS layout (EDF + SzCORE events)."""
    from neurodecode.data.simulated import generate_dataset

    root = tmp_path_factory.mktemp("simulated") / "seizure"
    generate_dataset(root, SIMULATION)
    return root


@pytest.fixture(scope="session")
def exported_detector(simulated_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dual-branch conformer trained for a few seconds, exported with its preprocessing."""
    from neurodecode.data import artifacts
    from neurodecode.data.io import read_recording
    from neurodecode.data.preprocess import config_dict, load_preprocess_config
    from neurodecode.data.transform import transform_recording
    from neurodecode.hub import build_model, export_model

    torch.set_num_threads(1)  # on shared, loaded cores more threads only spin
    config = load_preprocess_config("seizure", overrides=RECIPE_WINDOWS)
    label_map = dict(config.windows.label_map)
    xs, ys = [], []
    for path in sorted(simulated_root.rglob("*_eeg.edf")):
        qc = artifacts.RecordingQC(recording=path.name, source=str(path))
        shard = transform_recording(read_recording(path), config, label_map, qc)
        xs.append(shard.x)
        ys.append(shard.table["label"].to_numpy())
    x, y = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    ch_names = shard.ch_names
    from neurodecode.data.montage import channel_positions

    pos = channel_positions(ch_names)
    torch.manual_seed(0)
    model = build_model(
        "dual_branch_conformer",
        size="tiny",
        n_chans=len(ch_names),
        n_outputs=2,
        n_times=shard.n_times,
        sfreq=shard.sfreq,
        chs_info=[
            {"ch_name": n, "loc": [*map(float, p), *[0.0] * 9]}
            for n, p in zip(ch_names, pos, strict=True)
        ],
    )
    weights = torch.tensor([1.0, float((y == 0).sum() / max(1, (y == 1).sum()))])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        batch = torch.randint(len(x), (32,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch], weight=weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    out = tmp_path_factory.mktemp("detector")
    export_model(
        model.eval(),
        out,
        ch_pos=pos,
        preprocessing=config_dict(config),
        labels=["background", "seizure"],
        task="seizure",
        units="robust z-score",
    )
    return out
