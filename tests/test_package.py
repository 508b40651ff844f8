"""The package skeleton: registry safety, error messages, shipped resources."""

from __future__ import annotations

import pytest

from neurodecode.errors import ForeignTargetError, RecordingError, UnknownNameError
from neurodecode.registry import Registry, instantiate
from neurodecode.resources import resource_dir


def test_error_message_names_file_reason_and_hint():
    err = RecordingError("file is truncated", path="/data/a.edf", hint="download it again")
    assert str(err) == "/data/a.edf: file is truncated (download it again)"


def test_registry_lists_valid_names_for_unknown_one():
    reg = Registry("widget")

    @reg.register("round")
    class Round:
        pass

    assert reg.get("round") is Round
    assert reg.get(f"{Round.__module__}.{Round.__qualname__}") is Round
    with pytest.raises(UnknownNameError, match="valid widgets are: round"):
        reg.get("square")


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_foreign_target_is_refused(target):
    with pytest.raises(ForeignTargetError, match="refusing to instantiate"):
        instantiate({"_target_": target, "command": "echo pwned"})


@pytest.mark.parametrize("name", ["configs", "recipes", "data_manifests"])
def test_resources_are_found(name):
    assert resource_dir(name).is_dir()
