"""The review report of each recording, opened in a real headless browser (Debian's
chromium), and the fixed scales of its EEG pages."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurodecode.data import io
from neurodecode.data.annotations import write_szcore_events
from neurodecode.predict import figure as review
from neurodecode.predict import load_detector, pipeline, predict, predict_recording
from tests.conftest import require_shared

CHBMIT = "excerpts/chbmit"
BIDS_STEM = "sub-01_ses-01_task-szMonitoring_run-00"
PROVENANCE = {"datasets": ["simulated"], "kind": "simulated", "simulated_only": True,
              "parts": {"train": {"subjects": ["01", "02"], "n_seizures": 2}}}  # fmt: skip
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",
]  # fmt: skip
# Run first in the page under test: collects script and resource errors, then on load
# reports every image that did not decode and every event row that is not displayed.
HARNESS = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(
  e.message || ("failed to load " + (e.target && (e.target.alt || e.target.src || e.target.tagName)))
), true);
window.addEventListener("load", () => {
  const images = [...document.images];
  const visible = el => el.getBoundingClientRect().height > 0
    && getComputedStyle(el).visibility !== "hidden";
  const out = document.createElement("pre");
  out.id = "__check";
  out.textContent = JSON.stringify({
    errors: window.__errors,
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    events: [...document.querySelectorAll("tr.event")].filter(visible)
      .map(r => r.cells[1].textContent),
    references: [...document.querySelectorAll("tr.reference")].filter(visible).length,
    pages: images.slice(1).map(i => [i.getBoundingClientRect().width, i.naturalWidth]),
  });
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    """The chromium binary; skip when absent, but fail under ``CI=true`` (scripts/setup.sh
    installs it there)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (scripts/setup.sh installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def open_in_browser(page: Path, profile: Path) -> dict:
    """Load ``page`` (a copy beside it with :data:`HARNESS` first in its head) in headless
    chromium; return what the harness found."""
    probe = page.with_name(f"probe_{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + HARNESS, 1))
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="__check">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"the page did not finish loading: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def reports(exported_detector: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both CHB-MIT crops predicted through :func:`predict`; the seizure crop in a BIDS
    layout with its reference annotation (seizure from 1 s to the end of the crop)."""
    crops = require_shared(CHBMIT)
    data = tmp_path_factory.mktemp("report_input")
    eeg = data / "sub-01" / "ses-01" / "eeg"
    eeg.mkdir(parents=True)
    shutil.copy(crops / "chb01_03_seizure_crop.edf", eeg / f"{BIDS_STEM}_eeg.edf")
    reference = pd.DataFrame({"onset": [1.0], "duration": [40.0], "eventType": ["sz"]})
    write_szcore_events(eeg / f"{BIDS_STEM}_events.tsv", reference, recording_duration=41.0)
    shutil.copy(crops / "chb01_03_background_crop.edf", data / "background.edf")
    detector = load_detector(exported_detector)
    detector.provenance = PROVENANCE
    out = tmp_path_factory.mktemp("report_output")
    summary = predict(detector, data, out, progress=False, overlap=False)
    return {entry["input"]: entry for entry in summary["recordings"]}


def test_every_report_loads_in_chromium_and_shows_every_event(reports, tmp_path):
    assert len(reports) == 2
    for entry in reports.values():
        page = Path(entry["outputs"]["report"])
        found = open_in_browser(page, tmp_path / "profile")
        assert found["errors"] == [] and found["broken"] == [], found
        onsets = [f"{event['onset_s']:.1f}" for event in entry["events"]]
        assert found["events"] == onsets, found
        assert found["images"] == 1 + max(1, len(onsets))  # probability trace, EEG pages
        # EEG pages shown at the size they were drawn (CSS px are 1/96 inch), so the page's
        # µV/mm and mm/s hold on screen at 100 % zoom
        for shown_px, drawn_px in found["pages"]:
            assert shown_px == pytest.approx(drawn_px * 96 / review.DPI, abs=1.0)
        bids = "sub-01" in entry["input"]
        assert found["references"] == (1 if bids else 0)


def test_report_states_provenance_reference_scales_and_clock_time(reports):
    (entry,) = [e for e in reports.values() if "sub-01" in e["input"]]
    text = Path(entry["outputs"]["report"]).read_text(encoding="utf-8")
    assert "parts.train.n_seizures" in text and "simulated_only" in text
    assert "Reference annotations (1)" in text and "2076-11-06 14:32:59" in text
    assert f"{review.SENSITIVITY_UV_PER_MM:g} µV/mm" in text
    folder = Path(entry["outputs"]["report"]).with_name(f"{BIDS_STEM}_report")
    assert {p.name for p in folder.glob("*.png")} >= {"probability.png", "event-001.png"}
    onset = entry["events"][0]["onset_s"]
    clock = (dt.datetime(2076, 11, 6, 14, 32, 59) + dt.timedelta(seconds=onset)).strftime(
        "%H:%M:%S"
    )
    assert f"<td>{clock}</td>" in text


def _page(amplitude_uv: float, meas_date: dt.datetime | None):
    rng = np.random.default_rng(0)
    signal = amplitude_uv * rng.standard_normal((18, 30 * 128))
    names = [f"ch{i}" for i in range(18)]
    shown = review.Shown(1, 60.0, 70.0, 0.9)
    context = {"meas_date": meas_date, "reference": [(55.0, 90.0, "sz")], "bad": []}
    return review.eeg_page(signal, names, 50.0, 128.0, shown, context)


def test_eeg_pages_keep_one_sensitivity_whatever_the_amplitude():
    start = dt.datetime(2026, 1, 2, 3, 4, 5)
    for amplitude in (20.0, 300.0):  # a quiet and a loud recording: the same scales
        page = _page(amplitude, start)
        ax = page.axes[0]
        height_mm = ax.get_position().height * page.get_size_inches()[1] * 25.4
        width_mm = ax.get_position().width * page.get_size_inches()[0] * 25.4
        low, high = ax.get_ylim()
        assert (high - low) / height_mm == pytest.approx(review.SENSITIVITY_UV_PER_MM)
        assert width_mm / 30.0 == pytest.approx(review.TIMEBASE_MM_PER_S)
        ticks = ax.get_yticks()
        assert np.diff(ticks) == pytest.approx(-review.CHANNEL_MM * review.SENSITIVITY_UV_PER_MM)
        page.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert "55 s\n03:05:00" in labels  # offset and clock time (start + offset)
        assert "µV/mm" in ax.get_title(loc="left")
        assert any(t.get_text() == "100 µV" for t in ax.texts)  # the scale bar
    assert _page(20.0, None).axes[0].get_xticklabels()  # no clock time: offsets only


def test_review_figures_of_two_recordings_share_one_scale(exported_detector):
    """The issue: trace spacing was 329 µV in one review figure and 159 µV in the next."""
    detector = load_detector(exported_detector)
    for name in ("chb01_03_background_crop.edf", "chb01_03_seizure_crop.edf"):
        path = require_shared(CHBMIT) / name
        result = predict_recording(path, detector, overlap=False)
        reader = pipeline.BridgedSource(io.open_recording(path))
        grid = pipeline.make_grid(detector, reader.header.sfreq, reader.n_times)
        overview = review.overview_figure(result, detector, reader, grid)
        height_mm = overview.get_size_inches()[1] * 25.4
        pages = overview.axes[1:]
        assert len(pages) == min(review.MAX_EVENTS_SHOWN, max(1, len(result.events)))
        for ax in pages:
            low, high = ax.get_ylim()
            sensitivity = (high - low) / (ax.get_position().height * height_mm)
            assert sensitivity == pytest.approx(review.SENSITIVITY_UV_PER_MM)
            spacing = -np.diff(ax.get_yticks())
            assert spacing == pytest.approx(review.CHANNEL_MM * review.SENSITIVITY_UV_PER_MM)


def test_probabilities_are_never_rounded_up_to_certainty():
    assert review.probability_text(0.99996) == "> 0.999"
    assert review.probability_text(0.98765) == "0.988"
    assert review.probability_text(1.0) == "1.000"
    assert review.probability_text(float("nan")) == "n/a"
