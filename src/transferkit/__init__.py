"""transferkit: transfer learning that tells you whether it helped.

>>> import transferkit as tk
>>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
>>> m = tk.instance.KLIEP().fit(Xs, ys, Xt)          # doctest: +SKIP
>>> m.score(Xt, yt)                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from . import datasets, errors
from .base import TransferEstimator
from .errors import TransferkitError
from .registry import get_method, make, methods

__version__ = "0.1.0"

__all__ = ["datasets", "errors", "instance", "feature", "parameter", "heterogeneous",
           "pretrained", "baselines",
           "nn", "selection", "pipeline", "diagnostics", "transferability",
           "TransferEstimator",
           "TransferkitError", "methods", "make", "get_method", "load", "diagnose", "__version__"]

_LAZY = {"instance", "feature", "parameter", "heterogeneous", "pretrained", "baselines", "nn",
         "report", "io",
         "selection", "pipeline", "diagnostics", "transferability"}


def __getattr__(name: str) -> Any:
    # Families import torch or matplotlib lazily, so `import transferkit` stays light.
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'transferkit' has no attribute {name!r}")


def load(path: str, modules: Any = None, trusted: Any = None) -> Any:
    """Load a model saved with ``model.save(path)``; nothing in the folder can run code.

    ``modules`` supplies fresh instances of user-defined torch modules; ``trusted`` names
    extra scikit-learn-compatible types you trust (see :func:`transferkit.io.load`).
    """
    from .io import load as _load

    return _load(path, modules=modules, trusted=trusted)


def diagnose(Xs: Any, Xt: Any, ys: Any = None, yt: Any = None, **kwargs: Any) -> Any:
    """How and how much the target differs from the source: a
    :class:`~transferkit.diagnostics.ShiftReport` (see :func:`transferkit.diagnostics.diagnose`)."""
    from .diagnostics import diagnose as _diagnose

    return _diagnose(Xs, Xt, ys, yt, **kwargs)
