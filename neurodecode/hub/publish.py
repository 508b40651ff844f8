"""Publish an exported model (or a run directory, exported on the fly) to the Hub."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from neurodecode import jsonio
from neurodecode.errors import CheckpointError
from neurodecode.hub.export import copy_export, export_run
from neurodecode.hub.format import CONFIG_NAME, EXPORT_FILES
from neurodecode.hub.load import read_config

logger = logging.getLogger(__name__)


def push_to_hub(
    source: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
) -> Any:
    """Upload an exported model folder, or a run directory, as one new commit.

    Parameters
    ----------
    source : str or Path
        An exported folder (``config.json``, ``model.safetensors``, ``README.md``) or a run
        directory (exported first with :func:`~neurodecode.hub.export.export_run`). A
        ``config.json`` with bare ``NaN`` (older exports) is uploaded rewritten as strict JSON.
    repo_id : str
        ``org/name``; the repository is created (``private`` as given) if it does not exist.
    revision : str, optional
        Branch to commit to; default ``main``.
    commit_message : str, optional
        Default: "Upload <architecture> with neurodecode <version>".
    token : str or bool, optional
        Hub token; default the logged-in one / ``HF_TOKEN``.

    Returns
    -------
    huggingface_hub.CommitInfo
        ``.oid`` is the new commit hash; pin it with ``from_pretrained(..., revision=oid)``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="neurodecode-push-") as tmp:
        folder = source if (source / CONFIG_NAME).is_file() else _export_run(source, Path(tmp))
        if not jsonio.is_strict((folder / CONFIG_NAME).read_text(encoding="utf-8")):
            # an old export with bare NaN
            folder = copy_export(folder, Path(tmp) / "strict")
        config = read_config(folder / CONFIG_NAME)
        message = commit_message or (
            f"Upload {config['model']['_target_']} with neurodecode {config['neurodecode_version']}"
        )
        api = HfApi(
            token=token, library_name="neurodecode", library_version=config["neurodecode_version"]
        )
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                allow_patterns=list(EXPORT_FILES),
                commit_message=message,
                revision=revision,
            )
        except HfHubHTTPError as err:
            raise CheckpointError(
                f"upload refused: {err}",
                path=f"{api.endpoint}/{repo_id}",
                hint="check the token's write access to this namespace",
            ) from err
    logger.info("pushed %s to %s (commit %s)", folder, repo_id, info.oid)
    return info


def _export_run(run_dir: Path, tmp: Path) -> Path:
    if not run_dir.is_dir():
        raise CheckpointError("no such run directory or exported model folder", path=run_dir)
    return export_run(run_dir, tmp / "export")
