"""Every notebook in docs/notebooks/ executes from start to end on small data.

The notebooks are jupytext percent-format ``.py`` files (readable diffs, no ``.ipynb`` in
git). Each is converted with jupytext and run with nbclient in a fresh temporary folder
(``NEURODECODE_NOTEBOOK_WORKDIR``, which also holds ``NEURODECODE_HOME``), so nothing is
written into the repository. They find the real excerpts in ../shared/data beside the
checkout from that folder by themselves (``neurodecode.resources.shared_data``), without
``NEURODECODE_SHARED_DATA``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_shared

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.py"))


def test_every_notebook_is_listed_in_the_docs_index():
    assert NAMES, f"no notebooks in {NOTEBOOKS}"
    index = (NOTEBOOKS.parent / "index.md").read_text(encoding="utf-8")
    assert [name for name in NAMES if f"notebooks/{name}" not in index] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    require_shared()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv("NEURODECODE_SHARED_DATA", raising=False)
    monkeypatch.setenv("NEURODECODE_NOTEBOOK_WORKDIR", str(work))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = jupytext.read(NOTEBOOKS / name)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
