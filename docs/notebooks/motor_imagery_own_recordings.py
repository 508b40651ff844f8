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
# # Motor imagery on your own recordings
#
# Your lab recorded left- and right-hand motor imagery, one EDF (or BDF, GDF, FIF,
# BrainVision, EEGLAB) file per run, with the cues as annotations. This notebook describes
# the folder to neurodecode in a small manifest, trains the motor-imagery recipe on it and
# reads the results.
#
# To run offline, "your recordings" are simulated here: neurodecode's generator writes motor
# imagery EDF+ files in a BIDS layout (lateralised mu/beta desynchronisation over C3/C4,
# `left_hand` / `right_hand` events). Point `MY_RECORDINGS` at your own folder instead, and
# adapt the file pattern of the manifest. A tiny model trained for two epochs on a
# simulation shows the workflow; its scores say nothing about real decoding.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

WORK = Path(os.environ.get("NEURODECODE_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="nd-"))
MY_RECORDINGS = WORK / "my_mi_study"  # your BIDS-like folder
MAX_EPOCHS = 2
os.environ["NEURODECODE_HOME"] = str(WORK / "home")  # window caches go here

# %% [markdown]
# ## 1. The recordings
#
# Four subjects, one session of two runs each, 64 channels at 160 Hz (the eegmmidb montage).

# %%
from neurodecode.data.simulated import generate_dataset

generate_dataset(
    MY_RECORDINGS,
    {"task": "motor_imagery", "seed": 1, "n_subjects": 4, "n_sessions": 1, "n_runs": 2},
)
files = sorted(p.relative_to(MY_RECORDINGS) for p in MY_RECORDINGS.rglob("*_eeg.edf"))
print(len(files), "recordings, e.g.", files[0])

# %% [markdown]
# Look at one recording as neurodecode reads it (signals in volts, annotations in seconds):

# %%
from neurodecode.data.io import read_recording

recording = read_recording(MY_RECORDINGS / files[0])
print(len(recording.ch_names), "channels at", recording.sfreq, "Hz,", f"{recording.duration:.0f} s")
recording.annotations.head()

# %% [markdown]
# ## 2. A manifest for the folder
#
# A manifest tells neurodecode where recordings are, how subject, session and run come from
# a path (a regular expression with named groups), where their annotations are and how to
# read them. A `local` source reads the folder named by an environment variable; nothing is
# copied. `data_manifests/*.yaml` holds the shipped ones; `docs/datasets.md` explains every
# field.

# %%
manifest = WORK / "my_mi_study.yaml"
manifest.write_text(
    r"""
name: my_mi_study
description: Left- vs right-hand motor imagery recorded in our lab.
licence: internal
citation: our lab, unpublished
homepage: https://example.org
approximate_size: 60 MB
source:
  kind: local
  root_env: MY_MI_STUDY_ROOT
format: edf
reference: average reference
montage: 64-channel 10-10
sfreq: 160.0
annotation_format: bids_events
label_map: {left_hand: left_hand, right_hand: right_hand, rest: rest}
structure:
  recording: >-
    sub-(?P<subject>[^/_]+)/ses-(?P<session>[^/_]+)/eeg/sub-[^/_]+_ses-[^/_]+_task-(?P<task>[^/_]+)_run-(?P<run>[^/_]+)_eeg\.edf
  annotation: '{dir}/sub-{subject}_ses-{session}_task-{task}_run-{run}_events.tsv'
splits:
  by: subject
access:
  notes: On the lab server; set MY_MI_STUDY_ROOT.
"""
)
os.environ["MY_MI_STUDY_ROOT"] = str(MY_RECORDINGS)

from neurodecode.data.manifest import load_manifest

print(load_manifest(manifest).name, "is valid")

# %% [markdown]
# ## 3. Train the motor-imagery recipe on it
#
# `recipe=motor_imagery` cuts cue-locked epochs (0.5-4.5 s after each cue), filters 4-40 Hz,
# resamples to 128 Hz and classifies left against right hand. `data.name` takes a manifest
# path as well as a shipped name; everything else is an ordinary override. The shell
# equivalent:
#
# ```bash
# MY_MI_STUDY_ROOT=/data/my_mi_study python -m neurodecode.train recipe=motor_imagery \
#     data.name=my_mi_study.yaml data.datamodule.split=cross_subject
# ```

# %%
import torch

from neurodecode import train

torch.set_num_threads(1)
overrides = [
    "recipe=motor_imagery", f"data.name={manifest}", f"trainer.max_epochs={MAX_EPOCHS}", "data.datamodule.num_workers=0",
    "data.datamodule.valid_fraction=0.25", "data.datamodule.test_fraction=0.25",
    "trainer.enable_progress_bar=false", f"runs_dir={WORK / 'runs'}",
]  # fmt: skip
run_dir = train.run_recipe(overrides, WORK / "runs" / "motor_imagery" / "my_study")

# %% [markdown]
# ## 4. Results
#
# `results.json` in the run folder holds the test metrics (accuracy, balanced accuracy,
# Cohen's kappa, ROC-AUC and an exact binomial test against chance), the split, the resolved
# config and the versions used; `plots/` the confusion matrix.

# %%
results = train.read_results(run_dir)
for line in train.summary_lines(results):
    print(line)
sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())[:12]

# %%
from IPython.display import Image

Image(filename=str(run_dir / "plots" / "confusion_matrix.png"))

# %% [markdown]
# The recipe's model, `log_variance_net`, starts from CSP + LDA fitted on the training
# trials. Next: report the classical baselines beside it (`baseline=[csp_lda,tangent_space]`),
# try a larger model once there are more trials (`model=dual_branch_conformer`, or a
# pretrained encoder with `init_from=<run folder | export | Hub id>`, see the pretraining
# notebook), evaluate with
# MOABB's protocols (`data.datamodule.split=within_session | cross_session |
# cross_subject`), and export the model with `python -m neurodecode.hub export`.
