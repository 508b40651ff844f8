"""Seizure detection with a trained checkpoint: recorded files and live streams.

``python -m neurodecode.predict checkpoint=<Hub id | export dir | run dir | .ckpt>
input=<file or folder> output=<dir>`` (see :mod:`neurodecode.predict.__main__`), or in
Python :func:`predict_recording` (one file), :func:`predict` (a file or a folder, with
``summary.json``) and :class:`StreamDetector` (a live stream).
"""

from neurodecode.predict.detector import Detector, load_detector
from neurodecode.predict.offline import Prediction, predict, predict_recording
from neurodecode.predict.stream import StreamDetector, StreamEvent, lsl_chunks, stream_events

__all__ = [
    "Detector",
    "Prediction",
    "StreamDetector",
    "StreamEvent",
    "load_detector",
    "lsl_chunks",
    "predict",
    "predict_recording",
    "stream_events",
]
