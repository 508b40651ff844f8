"""The package's shape, as docs/architecture.md states it, checked from the source.

Stages are layered (lowest first); a module imports from its own package and from lower
layers only, always at module level, so the import graph is the architecture and a stage
that reaches back up fails here instead of hiding in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurodecode"

# lowest first; a module's layer is that of the longest prefix naming it
LAYERS: list[tuple[str, ...]] = [
    (
        "neurodecode",
        "neurodecode.errors",
        "neurodecode.files",
        "neurodecode.jsonio",
        "neurodecode.registry",
        "neurodecode.resources",
        "neurodecode.plots",
    ),
    ("neurodecode.data",),
    ("neurodecode.models",),
    ("neurodecode.evaluation",),
    ("neurodecode.tasks",),
    ("neurodecode.hub",),
    ("neurodecode.predict",),
    ("neurodecode.train", "neurodecode.run", "neurodecode.finetune"),
    ("neurodecode.cli", "neurodecode.__main__"),
]

# function-local imports of neurodecode's own modules that are deliberate, with the reason
LOCAL_IMPORTS_ALLOWED = {
    # the Triton kernels import triton, which only GPU machines have
    ("neurodecode.models.attention", "neurodecode.models.short_attention_kernels"),
    # ``neurodecode.from_pretrained`` without importing torch and the Hub stack on
    # ``import neurodecode`` (PEP 562 module __getattr__)
    ("neurodecode", "neurodecode.hub.load"),
    ("neurodecode", "neurodecode.hub"),
}

MAX_FUNCTION_LINES = 80
MAX_ENTRY_POINT_LINES = 150


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(name: str) -> int:
    if name.endswith(".__main__"):  # every ``python -m`` entry point is command line
        return len(LAYERS) - 1
    best, depth = 0, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def package_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


def internal_imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every neurodecode import."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under module-level `if`/`try` count as top level
        if isinstance(node, ast.If | ast.Try):
            top_level.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "neurodecode" or name.startswith("neurodecode."):
                found.append((name, node.lineno, id(node) in top_level))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_resources" not in p.parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of neurodecode (not a name inside one)."""
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (
        PACKAGE.parent / relative / "__init__.py"
    ).exists()


def test_no_module_imports_from_a_stage_above_it() -> None:
    wrong = []
    for path in modules():
        here = module_name(path)
        for name, line, _ in internal_imports(path):
            if not is_module(name) or package_of(name) == package_of(here):
                continue
            if (here, name) in LOCAL_IMPORTS_ALLOWED:
                continue
            if layer_of(name) > layer_of(here):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not wrong, "imports that reach up the flow:\n" + "\n".join(wrong)


def test_neurodecode_imports_are_at_module_level() -> None:
    hidden = []
    for path in modules():
        here = module_name(path)
        for name, line, top in internal_imports(path):
            if top or not is_module(name) or (here, name) in LOCAL_IMPORTS_ALLOWED:
                continue
            hidden.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not hidden, "function-local imports of neurodecode modules:\n" + "\n".join(hidden)


def test_functions_are_short() -> None:
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}: {node.name} ({length})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_training_entry_point_is_a_short_shell() -> None:
    lines = len((PACKAGE / "train.py").read_text().splitlines())
    assert lines < MAX_ENTRY_POINT_LINES, f"train.py has {lines} lines"


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("neurodecode.errors", 0),
        ("neurodecode.data.cache", 1),
        ("neurodecode.hub.load", 5),
        ("neurodecode.train", 7),
        ("neurodecode.cli.args", 8),
        ("neurodecode.hub.__main__", 8),
    ],
)
def test_layer_table_reads_as_documented(name: str, layer: int) -> None:
    assert layer_of(name) == layer
