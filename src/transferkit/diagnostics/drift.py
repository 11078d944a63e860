"""Per-feature drift ranking: one univariate two-sample test per column.

Rabanser et al. (2019, "Failing loudly") found univariate tests on each feature,
combined with a Bonferroni correction, to be strong shift detectors; they also point to
the shifted features, which a multivariate test does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from .._validation import _to_numpy
from ..errors import FeatureMismatchError, InputError, MissingColumnError, ParameterError

__all__ = ["drift_ranking"]


def _columns(X: Any, name: str) -> tuple[list[str | int], list[np.ndarray]]:
    """Column names (DataFrame) or indices (arrays) and one 1-D array per column."""
    if X is None:
        raise InputError(f"{name} is None; pass an array or DataFrame.")
    cols = getattr(X, "columns", None)
    if cols is not None and hasattr(X, "iloc"):
        return [str(c) for c in cols], [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
    arr = _to_numpy(X)
    if arr.ndim == 1:
        raise InputError(f"{name} is 1-D; pass a 2-D array of shape (n_samples, n_features), "
                         "e.g. X.reshape(-1, 1).")
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    return list(range(arr.shape[1])), [arr[:, j] for j in range(arr.shape[1])]


def _is_missing(v: np.ndarray) -> np.ndarray:
    if v.dtype.kind == "f":
        return np.isnan(v)
    if v.dtype.kind == "O":
        return np.array([x is None or (isinstance(x, float) and np.isnan(x)) for x in v],
                        dtype=bool)
    return np.zeros(len(v), dtype=bool)


def _chi2(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Chi-square test of homogeneity on the category counts; returns (stat, p, Cramér's V)."""
    a = a.astype(str) if a.dtype.kind == "O" else a
    b = b.astype(str) if b.dtype.kind == "O" else b
    cats, inv = np.unique(np.r_[a, b], return_inverse=True)
    if len(cats) < 2:
        return 0.0, 1.0, 0.0
    table = np.zeros((2, len(cats)))
    np.add.at(table[0], inv[: len(a)], 1)
    np.add.at(table[1], inv[len(a):], 1)
    res = stats.chi2_contingency(table, correction=False)
    v = float(np.sqrt(res.statistic / table.sum()))  # Cramér's V for a 2 x k table
    return float(res.statistic), float(res.pvalue), v


def drift_ranking(Xs: Any, Xt: Any, *, max_categories: int = 10,
                  categorical: list | None = None) -> list[dict]:
    """Rank features from most to least shifted with one univariate test per column.

    Numeric columns get the two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``,
    statistic = largest gap between the empirical CDFs). Categorical columns (non-numeric
    dtype, pandas ``category``/``bool``, fewer than ``max_categories + 1`` distinct values in
    the pooled data, or named in ``categorical``) get a chi-square test of homogeneity of
    the category frequencies. Missing values are dropped per column.

    Parameters
    ----------
    Xs, Xt : array-like or DataFrame of shape (n_source, d) and (n_target, d)
        Same columns in the same order. DataFrame columns may be non-numeric.
    max_categories : int, default=10
        Numeric columns with at most this many distinct values are treated as categorical.
    categorical : list of column names or indices, optional
        Columns to treat as categorical whatever their dtype.

    Returns
    -------
    list of dict
        One entry per feature, sorted by increasing p-value (ties: larger effect first),
        with keys ``feature`` (column name, or index for arrays), ``test`` (``"ks"`` or
        ``"chi2"``), ``statistic``, ``p_value``, ``effect_size`` (KS statistic, or Cramér's
        V for chi-square: both in [0, 1], comparable across tests) and ``p_value_bonferroni``
        (``min(1, d · p)``).

    References
    ----------
    Rabanser, Günnemann and Lipton, "Failing loudly: an empirical study of methods for
    detecting dataset shift", NeurIPS 2019.
    """
    if int(max_categories) < 0:
        raise ParameterError(f"max_categories must be >= 0; got {max_categories!r}.")
    names_s, cols_s = _columns(Xs, "Xs (source features)")
    names_t, cols_t = _columns(Xt, "Xt (target features)")
    if len(cols_s) != len(cols_t):
        raise FeatureMismatchError(
            f"source has {len(cols_s)} features and target has {len(cols_t)}; both domains "
            "must share the same columns in the same order.")
    if len(cols_s) == 0:
        raise InputError("the data have no features; pass at least one column.")
    if names_s != names_t and all(isinstance(c, str) for c in names_s + names_t):
        raise FeatureMismatchError(
            "source and target columns differ: "
            f"{[c for c in names_s if c not in names_t][:5]} only in source, "
            f"{[c for c in names_t if c not in names_s][:5]} only in target; use the same "
            "columns in the same order.")
    forced = set()
    for c in categorical or []:
        key = str(c) if isinstance(names_s[0], str) else c
        if key not in names_s:
            raise MissingColumnError(f"categorical column {c!r} is not in the data; columns "
                                     f"are {names_s[:10]}{'...' if len(names_s) > 10 else ''}.")
        forced.add(key)
    d = len(cols_s)
    out = []
    for name, a, b in zip(names_s, cols_s, cols_t):
        a = a[~_is_missing(a)]
        b = b[~_is_missing(b)]
        if len(a) == 0 or len(b) == 0:
            raise InputError(f"feature {name!r} has no non-missing value in the "
                             f"{'source' if len(a) == 0 else 'target'}; drop that column.")
        numeric = a.dtype.kind in "iuf" and b.dtype.kind in "iuf"
        if numeric and name not in forced:
            n_unique = len(np.unique(np.r_[a, b]))
            numeric = n_unique > max_categories
        if numeric:
            a_f, b_f = a.astype(np.float64), b.astype(np.float64)
            if not (np.isfinite(a_f).all() and np.isfinite(b_f).all()):
                raise InputError(f"feature {name!r} contains infinity; clip or drop it.")
            res = stats.ks_2samp(a_f, b_f)
            stat, p, eff, test = float(res.statistic), float(res.pvalue), float(res.statistic), "ks"
        else:
            stat, p, eff = _chi2(a, b)
            test = "chi2"
        out.append({"feature": name, "test": test, "statistic": stat, "p_value": p,
                    "effect_size": eff, "p_value_bonferroni": min(1.0, p * d)})
    out.sort(key=lambda r: (r["p_value"], -r["effect_size"]))
    return out
