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
# # The spiking dual-branch conformer and its energy report
#
# `spiking_dual_branch_conformer` is the dual-branch conformer with spike-driven transformers:
# leaky integrate-and-fire (LIF) neurons trained with surrogate gradients, attention between
# spikes, membrane shortcuts. It takes the same inputs and arguments as the analog model
# (`n_chans, n_outputs, n_times, sfreq, chs_info`, and `time_steps`), so any recipe can use it
# (`model=spiking`, e.g. `python -m neurodecode.train recipe=seizure data=simulated model=spiking`).
#
# Its appeal is energy: a spike (0 or 1) times a weight is an addition (AC, 0.9 pJ at 45 nm)
# instead of a multiply-accumulate (MAC, 4.6 pJ). `neurodecode.models.energy` counts both
# from the operands each layer really receives on real windows, plus the memory traffic,
# following the Spike-driven Transformer's convention (see the module's docstring).

# %% tags=["parameters"]
from neurodecode.resources import shared_data

# Real EEG: eegmmidb subject 1, run 4 (64 channels, 160 Hz, motor imagery), from the
# reference mirror, found from any working folder (beside the source checkout, or where
# NEURODECODE_SHARED_DATA says).
RECORDING = shared_data("mirror/eegmmidb/S001/S001R04.edf")
N_WINDOWS = 8  # more windows give steadier firing rates (the command line uses 32)
SIZE = "tiny"  # tiny | small | base

# %% [markdown]
# ## 1. Windows of a real recording
#
# Consecutive 4-s windows, each channel scaled by its standard deviation (unitless).

# %%
import torch

from neurodecode.cli.benchmark import recording_windows
from neurodecode.models import energy

torch.set_num_threads(1)
batches, signal = recording_windows(RECORDING, 4.0, N_WINDOWS, batch_size=8)
print(signal, "batch shape:", tuple(batches[0].shape))

# %% [markdown]
# ## 2. The two models side by side
#
# `compare` builds the analog model and its spiking counterpart with the same size,
# calibrates their batch-norm statistics on the windows and counts operations over them.

# %%
reports = energy.compare("spiking", batches, signal, size=SIZE, time_steps=4)
print(energy.format_table(reports))
print(energy.format_energy_table(reports))

# %% [markdown]
# Per sample: MACs and ACs and memory words, then the energy in µJ under each cost model
# (FP32, FP16 and INT8 compute at 45 nm, each with and without SRAM traffic, and Lemaire et
# al.'s model; see `neurodecode.models.energy`). The firing rate of each LIF layer decides how
# many ACs the spiking model performs:

# %%
analog, spiking = reports
print(energy.format_firing_rates(spiking))
for cost in ("fp32+sram", "int8+sram", "lemaire"):
    ratio = spiking.energy(cost).total_uj / analog.energy(cost).total_uj
    print(f"spiking / analog energy, {cost}: {ratio:.2f}")

# %%
import matplotlib.pyplot as plt

rates = spiking.firing_rates
fig, ax = plt.subplots(figsize=(6, 0.25 * len(rates) + 1))
ax.barh(list(rates), list(rates.values()))
ax.set_xlabel("firing rate (spikes per neuron per time step)")
ax.invert_yaxis()
fig.tight_layout()

# %% [markdown]
# These models are untrained: trained weights change the firing rates and so the energy.
# `docs/benchmarks.md` reports the figures of trained models. The same report from a shell
# (`out=` writes the JSON of both reports):
#
# ```bash
# neurodecode benchmark energy model=spiking data=../shared/data/mirror/eegmmidb/S001/S001R04.edf n_windows=32
# ```
#
# Caveats: these are estimates on a 45 nm model of a chip, counting synaptic operations and
# on-chip memory only; a CPU or GPU runs the spiking model slower than the analog one
# (`time_steps` passes over the layers), and the saving only materialises on neuromorphic
# hardware that skips the zeros.

# %% [markdown]
# ## On real data, trained: the energy–accuracy frontier
#
# `neurodecode benchmark results` trains the analog conformer (FP32 and its INT8
# post-training quantization) and the spiking conformer (T = 1, 2, 4; direct and delta
# input) on Bonn S vs the rest and eegmmidb S001 imagery, on the same splits as the
# classical baselines, and writes this figure and its tables into `docs/results.md`
# (accuracy against energy per window under the fp32+sram cost model; the dashed line is
# the best baseline):
#
# ![the energy–accuracy frontier](../results_frontier.png)
#
# On both datasets the INT8 analog model needs several times less energy per window than
# every spiking variant under the fp32, fp32+sram and Lemaire cost models, at the analog
# model's accuracy; only under int8+sram, which prices every model's operations as INT8,
# are the spiking variants cheaper (by a few tenths of a µJ). On Bonn the spiking variants
# with direct input reach the feature baseline's accuracy; on eegmmidb S001 no deep model
# reaches the baselines (see `docs/results.md`).

