"""``neurodecode predict stream=file:<recording>``: a real recording replayed as a live
stream gives the offline events, each printed within the stated latency."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from neurodecode.data.io import open_recording
from neurodecode.errors import ConfigError
from neurodecode.predict import predict_recording
from neurodecode.predict.__main__ import main
from neurodecode.predict.stream import replay_chunks
from tests.conftest import require_shared

LINE = re.compile(r"^(onset|offset) +at +([\d.]+) s +decided at +([\d.]+) s \(\+([\d.]+) s\)")


@pytest.mark.parametrize("name", ["chb01_03_seizure_crop.edf", "chb01_03_background_crop.edf"])
def test_replayed_recording_streams_the_offline_events(exported_detector, capsys, name):
    path = require_shared(f"excerpts/chbmit/{name}")
    started = time.monotonic()
    assert main([f"checkpoint={exported_detector}", f"stream=file:{path}", "speed=25"]) == 0
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("streaming "))
    latency = float(re.search(r"at most ([\d.]+) s", header).group(1))
    printed = [LINE.match(line).groups() for line in out if LINE.match(line)]
    onsets = [float(at) for kind, at, _, _ in printed if kind == "onset"]
    offline = predict_recording(path, exported_detector)
    assert len(onsets) == len(offline.events), (out, offline.events)
    for onset, (start, _) in zip(onsets, offline.events, strict=True):
        assert abs(onset - start) <= latency
    for _, at, decided, delay in printed:
        assert float(delay) <= latency and float(decided) >= float(at)
    assert out[-1].startswith(f"end of stream after 41.0 s: {len(onsets)} event(s)")
    assert elapsed >= 41.0 / 25  # paced: 25 times real time, not faster


def test_replay_releases_each_chunk_when_its_time_has_come():
    reader = open_recording(require_shared("excerpts/chbmit/chb01_03_background_crop.edf"))
    now, waits = [0.0], []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    chunks = list(replay_chunks(reader, chunk_s=2.0, speed=4.0, clock=lambda: now[0], sleep=sleep))
    assert [c.shape[1] for c in chunks] == [512] * 20 + [256]  # 41 s at 256 Hz
    np.testing.assert_allclose(waits, [0.5] * 20 + [0.25])  # 2 s of signal every 0.5 s
    np.testing.assert_array_equal(np.concatenate(chunks, axis=1), reader.read(0, reader.n_times))


def test_stream_needs_a_known_source(capsys):
    assert main(["checkpoint=x", "stream=tcp:host"]) == 2 or pytest.fail("refused")
    assert "stream='tcp:host' names no source" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="missing output"):
        from neurodecode.cli.predict import load_config

        load_config(["checkpoint=x", "input=y"])
