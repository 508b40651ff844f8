# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Pretrain an encoder, then linear-probe it
#
# `recipe=pretrain` trains a montage-agnostic `patch_conformer` encoder by masked
# reconstruction: patches of (channel, time) are hidden and the encoder reconstructs them,
# across datasets with different channels and rates. Any recipe then starts from it with
# `init_from=<pretraining run | exported folder | .ckpt | Hub id>`; `finetune.strategy=ridge`
# freezes the encoder and fits a new linear head in closed form (a ridge classifier), the
# usual test of what the representation holds.
#
# To stay offline and short, this notebook pretrains a very small encoder for a few dozen
# steps on simulated EEG only and probes it on the simulated seizure task for one epoch. The
# default mixture (`configs/data/mixture.yaml`) pretrains on the real eegmmidb and Bonn
# recordings.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

WORK = Path(os.environ.get("NEURODECODE_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="nd-"))
PRETRAIN_STEPS = 30
os.environ["NEURODECODE_HOME"] = str(WORK / "home")

# %%
import torch

from neurodecode import train

torch.set_num_threads(1)


# %% [markdown]
# ## 1. Pretraining
#
# The mixture's datasets have weights; here the real ones (eegmmidb, Bonn) are switched off
# and the simulated EEG on. The encoder is small (`model.dim`, `model.depth`, `model.n_heads`).

# %%
pretrain_overrides = [
    "recipe=pretrain", f"trainer.max_steps={PRETRAIN_STEPS}",
    "data.datasets.eegmmidb.weight=0", "data.datasets.bonn.weight=0",
    "data.datasets.simulated.weight=1",
    "model.dim=32", "model.depth=1", "model.n_heads=2",
    "data.datamodule.batch_size=8", "data.datamodule.samples_per_epoch=80",
    "trainer.enable_progress_bar=false",
]  # fmt: skip
pretrain_dir = train.run_recipe(pretrain_overrides, WORK / "runs" / "pretrain" / "demo")
print("steps:", train.read_results(pretrain_dir)["steps"])
sorted(p.name for p in (pretrain_dir / "encoder").iterdir())

# %% [markdown]
# The run exports its encoder to `encoder/` (safetensors and `config.json`, the same format
# as the Hub), with the channel positions it saw and the sampling rate. The reconstruction
# loss over the run:

# %%
import pandas as pd

metrics = pd.read_csv(next(pretrain_dir.rglob("metrics.csv")))
losses = metrics.filter(like="loss").dropna(how="all")
losses.tail()

# %% [markdown]
# ## 2. Linear probe on seizure detection
#
# The seizure recipe with `init_from` builds the task's encoder with the **pretrained**
# architecture (the recipe's `model` group is replaced), copies every pretrained weight and
# adds a new head; loading reports matched and new weights and refuses an encoder of another
# architecture or sampling rate. With `finetune.strategy=ridge` the encoder is frozen and the
# head is a ridge classifier on its features, fitted in closed form (no epoch).
# Shell equivalent:
#
# ```bash
# python -m neurodecode.train recipe=seizure data=simulated init_from=runs/pretrain/<time> finetune.strategy=ridge
# ```

# %%
probe_overrides = [
    "recipe=seizure", "data=simulated", f"init_from={pretrain_dir}",
    "finetune.strategy=ridge",
    "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
    "trainer.enable_progress_bar=false",
]  # fmt: skip
probe_dir = train.run_recipe(probe_overrides, WORK / "runs" / "seizure" / "probe")
for line in train.summary_lines(train.read_results(probe_dir)):
    print(line)

# %% [markdown]
# `finetune.strategy=full` (the default) trains all weights instead, with layer-wise
# learning-rate decay (`finetune.layer_decay`); `frozen`, `lora`, `ia3`, `dora` and
# `two_stage` lie in between (docs/pretraining.md, "Choosing an encoder and a strategy"). Thirty steps of pretraining on a simulation
# teach the encoder little: compare probes of encoders pretrained for longer on real data
# against a randomly initialised one before drawing conclusions.
