"""Manifests: every shipped one validates, unsafe or malformed ones are refused by name."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from neurodecode.data.manifest import list_manifests, load_manifest
from neurodecode.errors import ManifestError, UnknownNameError
from neurodecode.resources import resource_dir

EXPECTED = {"bnci2014_001", "bonn", "chbmit", "eegmmidb", "siena", "simulated",
            "szcore_bids", "things_eeg2", "tusz"}  # fmt: skip


def test_every_shipped_manifest_validates() -> None:
    names = list_manifests()
    assert EXPECTED <= set(names)
    for name in names:
        manifest = load_manifest(name)
        assert manifest.name == name
        assert manifest.manifest_path == resource_dir("data_manifests") / f"{name}.yaml"
        assert manifest.licence and manifest.citation and manifest.access.notes


def test_eegmmidb_lists_every_published_file_with_mnes_checksums() -> None:
    manifest = load_manifest("eegmmidb")
    published = dict(
        line.split()
        for line in files("mne").joinpath("data", "eegbci_checksums.txt").read_text().splitlines()
        if line.strip()
    )
    assert {f.path: f.sha256 for f in manifest.files} == published
    edfs = [f.path for f in manifest.files if f.path.endswith(".edf")]
    assert len(edfs) == 109 * 14
    assert manifest.events_for_run(4) == {
        "T0": "rest", "T1": "imagined_left_fist", "T2": "imagined_right_fist"
    }  # fmt: skip
    assert manifest.events_for_run(13)["T2"] == "both_feet"
    assert manifest.label_map["imagined_left_fist"] == "left_fist"


def test_sources_carry_what_their_kind_needs() -> None:
    assert load_manifest("chbmit").source.checksums_file == "SHA256SUMS.txt"
    assert load_manifest("siena").source.checksums_file == "SHA256SUMS.txt"
    bonn = load_manifest("bonn")
    assert bonn.source.checksums_are_ours and bonn.source.archives == "unzip"
    assert sorted(f.path for f in bonn.files) == ["F.zip", "N.zip", "O.zip", "S.zip", "Z.zip"]
    assert all(f.sha256 and f.size for f in bonn.files)
    assert load_manifest("tusz").source.root_env == "NEURODECODE_TUSZ_ROOT"
    assert load_manifest("tusz").access.data_use_agreement
    assert load_manifest("bnci2014_001").source.moabb_dataset == "BNCI2014_001"
    assert load_manifest("simulated").source.generator_params["task"] == "seizure"


def _write(tmp_path: Path, changes: dict, name: str = "bad.yaml") -> Path:
    data = yaml.safe_load((resource_dir("data_manifests") / "bonn.yaml").read_text())
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "bad_path", ["../escape.zip", "Z/../../escape.zip", "/etc/passwd", "C:/data/Z.zip",
                 "Z\\..\\x.zip", "./Z.zip", "Z//a.zip", ""],
)  # fmt: skip
def test_paths_leaving_the_dataset_root_are_refused(tmp_path: Path, bad_path: str) -> None:
    path = _write(tmp_path, {"files": [{"path": bad_path, "size": 1}]})
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value) and "files.0.path" in str(info.value)


def test_checksums_file_outside_the_root_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((resource_dir("data_manifests") / "chbmit.yaml").read_text())
    data["source"]["checksums_file"] = "../SHA256SUMS.txt"
    path = tmp_path / "chbmit.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError, match="source.checksums_file"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"licence": None}, "licence"),
        ({"sfreq": -1}, "sfreq"),
        ({"unexpected": 1}, "unexpected"),
        ({"files": [{"path": "Z.zip", "sha256": "abc"}]}, "files.0.sha256"),
        ({"source": {"kind": "ftp"}}, "source.kind"),
        ({"source": {"kind": "local"}}, "root_env"),
        ({"structure": {"recording": "(?P<set>[ZONFS])/x"}}, "subject"),
        ({"structure": {"recording": "(?P<subject>x", "annotation": None}}, "regular expression"),
        ({"structure": {"recording": "(?P<subject>x)", "annotation": "{nope}.txt"}}, "nope"),
    ],
)
def test_malformed_fields_are_named(tmp_path: Path, changes: dict, field: str) -> None:
    path = _write(tmp_path, changes)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_unparseable_yaml_and_unknown_names(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="broken.yaml"):
        load_manifest(broken)
    with pytest.raises(UnknownNameError, match="eegmmidb"):
        load_manifest("no_such_dataset")
