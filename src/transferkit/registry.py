"""Names -> methods, with the metadata the CLI and the comparison engine need.

A method registers itself with :func:`register`; ``transferkit.methods()`` lists them and
``transferkit.make(name, **params)`` builds one.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

from .errors import UnknownMethodError

__all__ = ["MethodInfo", "register", "methods", "get_method", "make", "SETTINGS", "FAMILIES"]

FAMILIES = ("baseline", "instance", "feature", "parameter", "heterogeneous")
SETTINGS = ("unsupervised", "semi-supervised", "supervised", "heterogeneous", "multi-source")
# Modules whose import registers methods; loaded lazily so `import transferkit` stays fast.
_FAMILY_MODULES = ("transferkit.baselines", "transferkit.instance", "transferkit.feature",
                   "transferkit.parameter", "transferkit.heterogeneous")


@dataclass(frozen=True)
class MethodInfo:
    """What a registered method is and where it applies."""

    name: str
    cls: type
    family: str
    settings: tuple[str, ...]
    tasks: tuple[str, ...]
    backend: str
    summary: str

    @property
    def needs_target_labels(self) -> bool:
        return "unsupervised" not in self.settings

    def create(self, **params: Any) -> Any:
        return self.cls(**params)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "settings": list(self.settings),
                "tasks": list(self.tasks), "backend": self.backend, "summary": self.summary}


class MethodList(list):
    """A list of :class:`MethodInfo` that prints as a table."""

    def __repr__(self) -> str:
        rows = [("name", "family", "settings", "tasks", "backend")]
        rows += [(m.name, m.family, ",".join(m.settings), ",".join(m.tasks), m.backend)
                 for m in self]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

    def names(self) -> list[str]:
        return [m.name for m in self]


_REGISTRY: dict[str, MethodInfo] = {}


def register(*, family: str, settings: tuple[str, ...], backend: str = "sklearn",
             name: str | None = None):
    """Class decorator that registers a :class:`~transferkit.base.TransferEstimator`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    for s in settings:
        if s not in SETTINGS:
            raise ValueError(f"unknown setting {s!r}; choose from {SETTINGS}")

    def deco(cls: type) -> type:
        key = name or cls.__name__
        doc = (cls.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = MethodInfo(key, cls, family, tuple(settings), tuple(cls._tasks),
                                    backend, doc[0] if doc else "")
        return cls

    return deco


def _load_all() -> None:
    for mod in _FAMILY_MODULES:
        importlib.import_module(mod)


def methods(family: str | None = None, setting: str | None = None,
            task: str | None = None) -> MethodList:
    """List registered methods, optionally filtered by family, setting and task.

    Examples
    --------
    >>> import transferkit as tk
    >>> "KLIEP" in tk.methods(family="instance").names()
    True
    """
    _load_all()
    out = MethodList()
    for info in sorted(_REGISTRY.values(), key=lambda m: (FAMILIES.index(m.family), m.name)):
        if family is not None and info.family != family:
            continue
        if setting is not None and setting not in info.settings:
            continue
        if task is not None and task not in info.tasks:
            continue
        out.append(info)
    return out


def get_method(name: str) -> MethodInfo:
    """The :class:`MethodInfo` registered under ``name`` (case-insensitive)."""
    _load_all()
    if name in _REGISTRY:
        return _REGISTRY[name]
    lowered = {k.lower(): k for k in _REGISTRY}
    if name.lower() in lowered:
        return _REGISTRY[lowered[name.lower()]]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownMethodError(
        f"unknown method {name!r}.{hint} `transferkit methods` lists the available ones."
    )


def make(name: str, **params: Any) -> Any:
    """Build the method registered under ``name`` with ``params``."""
    return get_method(name).create(**params)
