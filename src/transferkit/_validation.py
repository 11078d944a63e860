"""Input checks at the boundary: every public ``fit``/``predict`` goes through here.

Arrays are converted, never modified in place: the caller's data stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils.multiclass import type_of_target

from .errors import (
    EmptyDomainError,
    FeatureMismatchError,
    InputError,
    LabelLengthError,
    MissingTargetLabelsError,
    NonFiniteInputError,
    ParameterError,
    SingleClassError,
)

CLASSIFICATION = "classification"
REGRESSION = "regression"


def _to_numpy(X: Any) -> np.ndarray:
    """NumPy view of arrays, DataFrames/Series and torch tensors (no copy when possible)."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # torch.Tensor without importing torch
        return X.detach().cpu().numpy()
    if hasattr(X, "to_numpy"):  # pandas
        return X.to_numpy()
    return np.asarray(X)


def feature_names(X: Any) -> np.ndarray | None:
    """Column names of a DataFrame, else None."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    return np.asarray([str(c) for c in cols], dtype=object)


def check_X(X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise an error that says how to fix it."""
    if X is None:
        raise InputError(f"{name} is None; pass an array of shape (n_samples, n_features).")
    try:
        arr = _to_numpy(X)
        if arr.dtype.kind not in "fiub":
            arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be numeric (got values that cannot be read as numbers: {exc}); "
            "encode text or categorical columns first."
        ) from None
    if arr.ndim == 1:
        raise InputError(
            f"{name} is 1-D with {arr.shape[0]} values; pass a 2-D array of shape "
            "(n_samples, n_features), e.g. X.reshape(-1, 1) for a single feature."
        )
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] == 0:
        raise EmptyDomainError(f"{name} has no samples; each domain needs at least one row.")
    if arr.shape[1] == 0:
        raise InputError(f"{name} has no features; pass at least one column.")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise NonFiniteInputError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}); "
            "impute or drop those values before fitting."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise FeatureMismatchError(
            f"{name} has {arr.shape[1]} features but {n_features} were expected; source and "
            "target must share the same columns in the same order (for different feature "
            "spaces use a heterogeneous method: transferkit.methods(family='heterogeneous'))."
        )
    return arr


def _missing_mask(y: np.ndarray) -> np.ndarray:
    """True where a label is missing: NaN for numbers, None/NaN for objects."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in y])
    return np.zeros(y.shape[0], dtype=bool)


def check_pair(Xs: Any, Xt: Any, *, min_samples: int = 1, what: str = "this diagnostic",
               source: str = "Xs (source features)", target: str = "Xt (target features)"
               ) -> tuple[np.ndarray, np.ndarray]:
    """A source/target pair as finite 2-D float arrays over the same columns, each with at
    least ``min_samples`` rows (``what`` names the caller in that message)."""
    Xs_arr, Xt_arr = check_X(Xs, source), check_X(Xt, target)
    if Xs_arr.shape[1] != Xt_arr.shape[1]:
        raise FeatureMismatchError(
            f"{source} has {Xs_arr.shape[1]} features and {target} has {Xt_arr.shape[1]}; "
            "both domains must share the same columns in the same order.")
    if len(Xs_arr) < min_samples or len(Xt_arr) < min_samples:
        raise InputError(f"{what} needs at least {min_samples} samples per domain; got "
                         f"{len(Xs_arr)} source and {len(Xt_arr)} target.")
    return Xs_arr, Xt_arr


def check_y(y: Any, n: int, name: str, allow_missing: bool = False) -> np.ndarray:
    """A 1-D label vector of length ``n``; missing entries allowed only for ``yt``."""
    arr = _to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise LabelLengthError(f"{name} must be 1-D (one label per sample); got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise LabelLengthError(
            f"{name} has {arr.shape[0]} labels but there are {n} samples; give one label per "
            "row" + (" (NaN or None marks an unlabelled target sample)." if allow_missing else ".")
        )
    missing = _missing_mask(arr)
    if missing.any() and not allow_missing:
        raise NonFiniteInputError(
            f"{name} has {int(missing.sum())} missing labels; every source sample needs a label."
        )
    if arr.dtype.kind == "f" and np.isinf(arr[~missing]).any():
        raise NonFiniteInputError(f"{name} contains infinity; labels must be finite.")
    return arr


def infer_task(y: np.ndarray, estimator: Any = None) -> str:
    """``"classification"`` or ``"regression"``, from the estimator if it says, else from ``y``."""
    kind = getattr(estimator, "_estimator_type", None)
    if kind is None and estimator is not None and hasattr(estimator, "__sklearn_tags__"):
        try:
            kind = estimator.__sklearn_tags__().estimator_type
        except Exception:  # noqa: BLE001 - third-party tags may be incomplete
            kind = None
    if kind == "classifier":
        return CLASSIFICATION
    if kind == "regressor":
        return REGRESSION
    target_type = type_of_target(y)
    if target_type in ("binary", "multiclass"):
        return CLASSIFICATION
    if target_type in ("continuous",):
        return REGRESSION
    raise InputError(
        f"cannot tell the task from labels of type {target_type!r}; pass 1-D class labels or "
        "real-valued targets."
    )


@dataclass
class DomainData:
    """Validated source/target data as every ``_fit`` sees it.

    For classification, ``ys`` and the labelled part of ``yt`` are encoded as integers
    ``0..n_classes-1`` (``classes`` holds the original labels); unlabelled target rows
    have ``yt`` = -1 (classification) or NaN (regression) and ``labeled`` False.
    """

    Xs: np.ndarray
    ys: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    labeled: np.ndarray
    task: str
    classes: np.ndarray | None = None
    feature_names: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_labeled(self) -> int:
        return int(self.labeled.sum())

    @property
    def Xt_labeled(self) -> np.ndarray:
        return self.Xt[self.labeled]

    @property
    def yt_labeled(self) -> np.ndarray:
        return self.yt[self.labeled]


def check_domains(
    Xs: Any,
    ys: Any,
    Xt: Any,
    yt: Any = None,
    *,
    estimator: Any = None,
    task: str | None = None,
    needs_target_labels: bool = False,
    same_features: bool = True,
) -> DomainData:
    """Validate a ``fit(Xs, ys, Xt, yt)`` call and encode its labels (``same_features``
    False: the domains may have different columns, as heterogeneous methods allow)."""
    Xs_arr = check_X(Xs, "Xs (source features)")
    Xt_arr = check_X(Xt, "Xt (target features)")
    if same_features and Xs_arr.shape[1] != Xt_arr.shape[1]:
        raise FeatureMismatchError(
            f"source has {Xs_arr.shape[1]} features and target has {Xt_arr.shape[1]}; both "
            "domains must share the same columns in the same order (for different feature "
            "spaces use a heterogeneous method: transferkit.methods(family='heterogeneous'))."
        )
    ys_arr = check_y(ys, Xs_arr.shape[0], "ys (source labels)")
    if yt is None:
        yt_arr = None
        labeled = np.zeros(Xt_arr.shape[0], dtype=bool)
    else:
        yt_arr = check_y(yt, Xt_arr.shape[0], "yt (target labels)", allow_missing=True)
        labeled = ~_missing_mask(yt_arr)
    if needs_target_labels and not labeled.any():
        raise MissingTargetLabelsError(
            "this method needs some labelled target samples: pass yt with the target labels "
            "(NaN or None for the unlabelled ones)."
        )
    task = task or infer_task(ys_arr, estimator)
    names = feature_names(Xs if same_features else Xt)  # the columns predict takes
    if task == CLASSIFICATION:
        known = ys_arr if yt_arr is None else np.concatenate([ys_arr, yt_arr[labeled]])
        try:
            classes = np.unique(known)
        except TypeError:
            raise InputError("labels mix types that cannot be compared; use one type.") from None
        if np.unique(ys_arr).shape[0] < 2:
            raise SingleClassError(
                f"the source labels hold a single class ({ys_arr[0]!r}); a classifier needs at "
                "least two classes in the labelled source data."
            )
        ys_enc = np.searchsorted(classes, ys_arr).astype(np.int64)
        yt_enc = np.full(Xt_arr.shape[0], -1, dtype=np.int64)
        if yt_arr is not None and labeled.any():
            yt_enc[labeled] = np.searchsorted(classes, yt_arr[labeled])
        return DomainData(Xs_arr, ys_enc, Xt_arr, yt_enc, labeled, task, classes, names)
    try:
        ys_f = ys_arr.astype(np.float64)
        yt_f = np.full(Xt_arr.shape[0], np.nan)
        if yt_arr is not None and labeled.any():
            yt_f[labeled] = yt_arr[labeled].astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("regression labels must be numbers.") from None
    return DomainData(Xs_arr, ys_f, Xt_arr, yt_f, labeled, task, None, names)


def check_choice(name: str, value: object, choices: tuple) -> None:
    """Raise :class:`ParameterError` naming the choices when ``value`` is not one."""
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}; "
                             f"got {value!r}.")


def check_positive(name: str, value: float, strict: bool = False) -> None:
    """Raise :class:`ParameterError` unless ``value`` ≥ 0 (> 0 with ``strict``)."""
    ok = value > 0 if strict else value >= 0
    if not ok:
        raise ParameterError(f"{name} must be {'>' if strict else '>='} 0; got {value!r}.")

