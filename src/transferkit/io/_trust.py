"""Which names in a skops file transferkit lets skops import.

skops already trusts a curated list (scikit-learn estimators, NumPy arrays, ...); it
reports everything else through ``get_untrusted_types``. Of those, transferkit accepts a
name only if

* its module is under ``sklearn``, ``numpy``, ``scipy`` or ``transferkit`` (or is
  ``builtins`` / ``collections`` / ``functools``, classes only), outside modules that
  touch files or run code (``testing``, ``io``, ``f2py``, ...);
* it resolves to a class, or to a function that the file only *references* (skops'
  ``FunctionNode``/``TypeNode``): every other loader calls the name, and calling a
  trusted function with arguments chosen by the file would be code execution;
* the object it resolves to is itself defined under those modules (no re-exports).
"""

from __future__ import annotations

import importlib
import io
import json
import types
import zipfile
from collections import defaultdict

import numpy as np

_PACKAGES = ("sklearn", "numpy", "scipy", "transferkit")
_STDLIB = ("builtins", "collections", "functools")  # classes only: eval/exec are functions
_DENIED_PARTS = frozenset({"testing", "_testing", "tests", "distutils", "f2py", "ctypeslib",
                           "io", "_datasource", "npyio", "_npyio_impl", "datasets",
                           "conftest", "_testutils", "__main__"})
_REFERENCE_LOADERS = frozenset({"FunctionNode", "TypeNode"})


def _loaders(data: bytes) -> dict[str, set[str]]:
    """``"module.name"`` -> the skops loaders that the file uses for it."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        schema = json.loads(zf.read("schema.json"))
    out: dict[str, set[str]] = defaultdict(set)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            mod, cls = node.get("__module__"), node.get("__class__")
            if isinstance(mod, str) and isinstance(cls, str):
                out[f"{mod}.{cls}"].add(str(node.get("__loader__")))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _module_ok(module: str) -> bool:
    parts = module.split(".")
    if module not in _STDLIB and parts[0] not in _PACKAGES:
        return False
    return not _DENIED_PARTS.intersection(parts)


def _allowed(name: str, loaders: set[str]) -> bool:
    module, _, attr = name.rpartition(".")
    if not module or not _module_ok(module):
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception:
        return False
    real = getattr(obj, "__module__", None)
    if not isinstance(real, str) or not _module_ok(real):
        return False
    if isinstance(obj, type):
        return not issubclass(obj, np.memmap)  # its constructor creates files
    called = not loaders or not loaders <= _REFERENCE_LOADERS
    is_function = callable(obj) and not isinstance(obj, types.ModuleType)
    return is_function and not called and real not in _STDLIB and module not in _STDLIB


def refused(data: bytes, names: list[str]) -> list[str]:
    """The names among skops' untrusted ``names`` that transferkit does not trust."""
    if not names:
        return []
    loaders = _loaders(data)
    return [n for n in names if not _allowed(n, loaders.get(n, set()))]
