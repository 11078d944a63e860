"""Few-label targets for experiments: keep a handful of labels, mark the rest unlabelled."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import _missing_mask, check_y
from ..errors import InputError

__all__ = ["keep_labels"]


def keep_labels(y: Any, per_class: int, random_state: int | None = None) -> np.ndarray:
    """``y`` with ``per_class`` labels kept in each class and the others unlabelled.

    What ``fit(Xs, ys, Xt, yt)`` reads as a semi-supervised target: numeric labels become
    floats with NaN for the hidden ones, other labels an object array with None.

    Parameters
    ----------
    y : array-like of shape (n,)
        Class labels.
    per_class : int
        Labels to keep per class (drawn without replacement).
    random_state : int or None

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.datasets import keep_labels
    >>> few = keep_labels(np.array([0, 0, 0, 1, 1, 1]), 1, random_state=0)
    >>> int(np.sum(~np.isnan(few)))
    2
    """
    y = np.asarray(y)
    if y.ndim != 1 or _missing_mask(y).any():
        raise InputError("keep_labels needs a 1-D array with every label present (it hides "
                         "the others itself).")
    y = check_y(y, len(y), "y")
    classes, counts = np.unique(y, return_counts=True)
    if per_class < 1 or per_class > counts.min():
        raise InputError(f"per_class must be between 1 and {counts.min()} (the smallest "
                         f"class has {counts.min()} rows); got {per_class}.")
    rng = np.random.default_rng(random_state)
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                           for c in classes])
    numeric = y.dtype.kind in "biuf"
    out = np.full(len(y), np.nan if numeric else None, dtype=np.float64 if numeric else object)
    out[keep] = y[keep]
    return out
