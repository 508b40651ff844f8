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
# # Detecting seizures in an EDF recording with a checkpoint
#
# A clinical researcher has a checkpoint (usually a Hugging Face Hub id such as
# `my-lab/seizure-dbc`) and a patient's recording. This notebook runs the checkpoint over the
# recording, looks at the review figure and exports the detections as SzCORE events.
#
# So that it runs offline and in seconds, the notebook first trains a **tiny** detector on
# neurodecode's simulated EEG and exports it to a folder. An exported folder and a Hub id are
# read the same way (`neurodecode.hub.from_pretrained`): in practice replace `CHECKPOINT` below
# by the Hub id. A detector this small, trained for one epoch on simulated data, is a
# demonstration of the workflow, not a usable seizure detector.
#
# Research software: detections are suggestions for a trained reviewer, not a diagnosis.

# %% tags=["parameters"]
import os
import tempfile
from pathlib import Path

from neurodecode.resources import shared_data

# The recording to review: the CHB-MIT excerpt of the reference data (chb01_03, 23-channel
# bipolar EEG at 256 Hz around its seizure at 2996-3036 s), found from any working folder
# (beside the source checkout, or where NEURODECODE_SHARED_DATA says).
RECORDING = shared_data("excerpts/chbmit/chb01_03_seizure_crop.edf")
# Everything this notebook writes goes into a fresh working folder, never into the repository.
WORK = Path(os.environ.get("NEURODECODE_NOTEBOOK_WORKDIR") or tempfile.mkdtemp(prefix="nd-"))

os.environ["NEURODECODE_HOME"] = str(WORK / "home")  # dataset and window caches
print("working folder:", WORK)

# %% [markdown]
# ## 1. A checkpoint to work with
#
# `recipe=seizure` derives every recording into the 18-pair double-banana montage, resamples
# to 128 Hz and classifies 4-s windows. Here it runs on simulated data with a tiny model for
# one epoch (the command line equivalent is
# `python -m neurodecode.train recipe=seizure data=simulated model.size=tiny trainer.max_epochs=1`).

# %%
import torch

from neurodecode import train
from neurodecode.hub import export_run

torch.set_num_threads(1)
overrides = [
    "recipe=seizure", "data=simulated", "model.size=tiny", "trainer.max_epochs=1",
    "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
    "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
    f"runs_dir={WORK / 'runs'}",
]  # fmt: skip
run_dir = train.run_recipe(overrides, WORK / "runs" / "seizure" / "demo")
CHECKPOINT = export_run(run_dir, WORK / "seizure-dbc-tiny")  # in practice: "my-lab/seizure-dbc"
print("exported to", CHECKPOINT)

# %% [markdown]
# ## 2. What the checkpoint expects
#
# `from_pretrained` reads `config.json` and `model.safetensors` (a Hub id is downloaded first,
# checksums checked). The config records the channels, sampling rate and window length of
# the model's input and the preprocessing of its training data.

# %%
from neurodecode.hub import from_pretrained

pretrained = from_pretrained(CHECKPOINT)
print(type(pretrained.model).__name__, "outputs:", pretrained.labels)
print(f"{len(pretrained.ch_names)} channels at {pretrained.sfreq} Hz, "
      f"{pretrained.n_times} samples per window")  # fmt: skip
print("channels:", ", ".join(pretrained.ch_names))

# %% [markdown]
# ## 3. Run it over the recording
#
# `load_detector` wraps the same checkpoint with its preprocessing and event post-processing
# (override any of `threshold`, `off_threshold`, `smoothing_windows`, `merge_gap_s`,
# `min_duration_s`). `predict_recording` replays the preprocessing span by span, so memory
# stays flat however long the recording, and writes the events, per-second probabilities and
# the review figure.

# %%
from neurodecode.predict import load_detector, predict_recording

detector = load_detector(CHECKPOINT)
out = WORK / "predictions"
result = predict_recording(RECORDING, detector, out)
print("events (onset s, offset s):", result.events)
result.per_second.head()

# %% [markdown]
# ## 4. Review
#
# The figure shows the seizure probability over the whole recording with the threshold and
# the detected events, and below it the filtered EEG (µV) around each event (or around the
# most probable window when nothing was detected).

# %%
from IPython.display import Image, display

figures = sorted(out.glob("*_review.png"))
display(Image(filename=str(figures[0])))

# %% [markdown]
# Read the figure before the events. The demonstration detector above (one epoch on a
# simulation) has never seen real EEG: on this excerpt, ictal from its second second to its
# end, it stays below the threshold, and the lower panel then shows the window of highest
# probability instead of an event. A trained checkpoint is needed for real detections.

# %%
print(f"highest seizure probability: {result.per_second['p_seizure'].max():.2f}")

# %% [markdown]
# ## 5. Export the events
#
# `<stem>_events.tsv` is in SzCORE's BIDS format (`onset`, `duration`, `eventType`,
# `confidence`, `recordingDuration`, `dateTime`), ready to be scored against an annotation
# file with SzCORE's tools or opened by a reviewer. A recording without detections gets
# SzCORE's single `bckg` row.

# %%
from neurodecode.data.annotations import read_szcore_events

events_file = next(out.glob("*_events.tsv"))
events = read_szcore_events(events_file)
print(events_file.name)
events

# %% [markdown]
# The same from a shell, for one file or a whole BIDS folder (a `summary.json` lists every
# recording and the ones that failed, with the reason):
#
# ```bash
# python -m neurodecode.predict checkpoint=my-lab/seizure-dbc input=patient.edf output=predictions/
# ```
