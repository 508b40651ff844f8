"""THINGS-EEG2's preprocessed release: read without unpickling code, split by its published
test set, one fold per subject."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.io import THINGS_EEG2_N_TEST_IMAGES, read_recording
from neurodecode.data.splits import published_test_splits
from neurodecode.errors import ConfigError, RecordingError

CHANNELS = "Pz P3 P7 O1 Oz O2 P4 P8 P1 P5 PO7 PO3 POz PO4 PO8 P6 P2".split()


def write_release_file(path, n_images, n_repetitions, seed=0):
    """A file laid out like the release: a dict saved by numpy.save (a pickled object)."""
    rng = np.random.default_rng(seed)
    content = {
        "preprocessed_eeg_data": rng.standard_normal((n_images, n_repetitions, 17, 100)),
        "ch_names": CHANNELS,
        "times": np.round(np.arange(-20, 80) / 100.0, 2),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, content, allow_pickle=True)
    return content


def test_epochs_become_events_named_by_their_image(tmp_path):
    path = tmp_path / "sub-03" / "preprocessed_eeg_test.npy"
    content = write_release_file(path, n_images=4, n_repetitions=3)
    recording = read_recording(path)
    assert (recording.subject, recording.session) == ("03", "test")
    assert recording.sfreq == 100.0 and recording.ch_names == CHANNELS
    events = recording.annotations
    # image-major, 3 repetitions each, onset at time 0 of each 1-s epoch (0.2 s after its start)
    assert events["description"].tolist()[:4] == ["concept_00000"] * 3 + ["concept_00001"]
    np.testing.assert_allclose(events["onset"].to_numpy()[:2], [0.2, 1.2])
    epoch = content["preprocessed_eeg_data"][1, 2]  # image 1, repetition 2 → epoch 5
    np.testing.assert_allclose(recording.signal[:, 500:600], epoch, rtol=1e-6)


def test_training_images_follow_the_test_images_in_the_table(tmp_path):
    path = tmp_path / "sub-01" / "preprocessed_eeg_training.npy"
    write_release_file(path, n_images=2, n_repetitions=1)
    names = read_recording(path).annotations["description"].tolist()
    assert names == [f"concept_{THINGS_EEG2_N_TEST_IMAGES:05d}", "concept_00201"]


def test_a_file_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "sub-01" / "preprocessed_eeg_test.npy"
    path.parent.mkdir()
    np.save(path, np.array({"preprocessed_eeg_data": Payload()}, dtype=object), allow_pickle=True)
    with pytest.raises(RecordingError, match="asks to run .*system") as error:
        read_recording(path)
    assert str(path) in str(error.value)
    assert not (tmp_path / "ran").exists()


def _index(subjects=("01", "02", "03"), n_train=20, n_test=5):
    rows = []
    for subject in subjects:
        rows += [(subject, "training", 100 + c) for c in range(n_train) for _ in range(2)]
        rows += [(subject, "test", c) for c in range(n_test) for _ in range(2)]
    return pd.DataFrame(rows, columns=["subject", "session", "label"])


@pytest.mark.parametrize("protocol", ["intra_subject", "inter_subject"])
def test_every_fold_tests_one_subject_on_the_published_test_set(protocol):
    index = _index()
    splits = published_test_splits(index, protocol, test_session="test", valid_fraction=0.2)
    assert [s.name for s in splits] == [f"{protocol}/test-sub-0{k}" for k in (1, 2, 3)]
    valid_concepts = None
    for split, subject in zip(splits, ("01", "02", "03"), strict=True):
        test, train, valid = (index.iloc[split.part(p)] for p in ("test", "train", "valid"))
        assert set(test["subject"]) == {subject} and set(test["session"]) == {"test"}
        assert set(test["label"]) == set(range(5))  # all published test concepts
        trained = set(train["subject"])
        assert trained == (
            {subject} if protocol == "intra_subject" else {"01", "02", "03"} - {subject}
        )
        assert set(train["session"]) == set(valid["session"]) == {"training"}
        assert not set(train["label"]) & set(valid["label"])  # whole concepts held out
        assert len(set(valid["label"])) == 4
        valid_concepts = valid_concepts or set(valid["label"])
        assert set(valid["label"]) == valid_concepts  # the same for every subject


def test_a_dataset_without_the_test_session_is_refused():
    index = _index().assign(session="training")
    with pytest.raises(ConfigError, match="no window comes from the test session 'test'"):
        published_test_splits(index, "intra_subject", test_session="test")
