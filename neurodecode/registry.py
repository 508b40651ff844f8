"""Name → class registries: the only way a config can create an object.

A config (possibly downloaded from the Hub) names what it wants either by its short
registered name (``dual_branch_conformer``) or by the registered class's import path
(``neurodecode.models.conformer.DualBranchConformer``) in ``_target_``; names a class had
before it moved or was renamed stay valid as aliases, so configs exported then still load.
Anything not registered is refused with :class:`~neurodecode.errors.ForeignTargetError`,
so a config can never import and call arbitrary code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from neurodecode.errors import ForeignTargetError, UnknownNameError

T = TypeVar("T")


class Registry:
    """A named collection of classes (or factories) of one kind.

    Parameters
    ----------
    kind : str
        What the registry holds, used in messages ("model", "task", ...).
    module : str, optional
        The neurodecode package whose import registers every entry. Named here (not
        discovered) so the set of instantiable classes is fixed by the package, not by
        ``sys.path``; imported on first lookup, so a model lookup never imports the tasks.
    """

    def __init__(self, kind: str, module: str | None = None) -> None:
        self.kind = kind
        self.module = module
        self._entries: dict[str, Callable[..., Any]] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded and self.module is not None:
            self._loaded = True
            importlib.import_module(self.module)

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Class decorator adding the decorated class under ``name``.

        ``aliases`` are former names or import paths of the class that configs written
        earlier may still use; they resolve to ``name`` but are not listed by :meth:`names`.
        """

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} name {name!r} is already registered")
            self._entries[name] = obj  # type: ignore[assignment]
            self._aliases.update(dict.fromkeys(aliases, name))
            return obj

        return decorator

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        """Return the class registered as ``name`` (short name or import path)."""
        self._load()
        name = self._aliases.get(name, name)
        if name in self._entries:
            return self._entries[name]
        for obj in self._entries.values():
            if _import_path(obj) == name:
                return obj
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; valid {self.kind}s are: {', '.join(self.names())}"
        )

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Instantiate the class registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def name_of(self, obj: Any) -> str:
        """The registered short name of a class or of an instance of it."""
        cls = obj if isinstance(obj, type) else type(obj)
        for name, entry in self._entries.items():
            if entry is cls:
                return name
        raise UnknownNameError(f"{_import_path(cls)} is not a registered {self.kind}")

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._aliases


MODELS = Registry("model", "neurodecode.models")
TASKS = Registry("task", "neurodecode.tasks")
# Classifiers fitted in closed form (scikit-learn), built from a config like MODELS but
# without their gradient, embedding and export contract (neurodecode.models.classical).
CLASSICAL_MODELS = Registry("classical model", "neurodecode.models")

_ALL = (MODELS, CLASSICAL_MODELS, TASKS)


def _import_path(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def instantiate(config: Mapping[str, Any], **overrides: Any) -> Any:
    """Create an object from a config whose ``_target_`` is a registered name.

    Parameters
    ----------
    config : mapping
        ``{"_target_": <registered name or import path>, **kwargs}``. Nested mappings with
        their own ``_target_`` are instantiated first, through the registry as well.
    **overrides
        Keyword arguments that replace entries of ``config``.

    Raises
    ------
    ForeignTargetError
        If ``_target_`` (or any nested one) is not in neurodecode's registries.
    """
    kwargs = {k: v for k, v in dict(config).items() if k != "_target_"}
    kwargs.update(overrides)
    target = config.get("_target_")
    if not isinstance(target, str):
        raise ForeignTargetError(f"config has no string '_target_': {dict(config)!r}")
    kwargs = {k: _instantiate_nested(v) for k, v in kwargs.items()}
    return _lookup(target)(**kwargs)


def _instantiate_nested(value: Any) -> Any:
    if isinstance(value, Mapping) and "_target_" in value:
        return instantiate(value)
    return value


def _lookup(target: str) -> Callable[..., Any]:
    for registry in _ALL:
        try:
            return registry.get(target)
        except UnknownNameError:
            continue
    raise ForeignTargetError(
        f"refusing to instantiate {target!r}: only classes registered with neurodecode can be "
        "created from a config",
        hint="use one of: " + ", ".join(n for r in _ALL for n in r.names()),
    )
