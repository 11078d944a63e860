"""Label shift (black-box shift estimation) and the Ben-David adaptation bound.

References
----------
Lipton, Wang and Smola, "Detecting and correcting for label shift with black box
predictors", ICML 2018.
Ben-David, Blitzer, Crammer, Kulesza, Pereira and Vaughan, "A theory of learning from
different domains", Machine Learning 79 (2010).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import check_pair, check_y
from ..errors import InputError, ParameterError, SingleClassError
from .divergence import proxy_a_distance

__all__ = ["estimate_label_shift", "ben_david_bound"]


def _default_classifier() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _class_labels(ys: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = check_y(ys, n, "ys (source labels)")
    try:
        classes, enc = np.unique(y, return_inverse=True)
    except TypeError:
        raise InputError("labels mix types that cannot be compared; use one type.") from None
    if len(classes) < 2:
        raise SingleClassError(f"the source labels hold a single class ({_py(y[0])!r}); "
                               "label-shift estimation needs at least two classes.")
    return classes, enc


def _py(v: Any) -> Any:
    """NumPy scalar -> Python scalar, for JSON."""
    return v.item() if hasattr(v, "item") else v


def estimate_label_shift(Xs: Any, ys: Any, Xt: Any, estimator: Any = None,
                         test_size: float = 0.5, random_state: int | None = 0) -> dict:
    """Black-box shift estimation (BBSE) of the target class priors.

    Under label shift (``p_t(x | y) = p_s(x | y)``, only ``p(y)`` changes) the importance
    weights ``w_y = p_t(y) / p_s(y)`` solve ``C w = μ̂_t`` (Lipton et al. 2018), where
    ``C[i, j] = P_s(ŷ = i, y = j)`` is the joint confusion matrix of a source classifier
    on held-out source data and ``μ̂_t[i]`` the share of target samples it predicts as
    class ``i``. Negative weights (estimation noise) are clipped to 0 and the target
    priors ``q_y ∝ w_y p_s(y)`` renormalised.

    Parameters
    ----------
    Xs : array-like of shape (n_source, d)
    ys : array-like of shape (n_source,)
        Source class labels (at least two classes).
    Xt : array-like of shape (n_target, d)
    estimator : scikit-learn classifier, optional
        The black-box classifier; default: standardisation + ``LogisticRegression``. It
        need not be calibrated, but its confusion matrix must be invertible (better than
        chance on every class).
    test_size : float, default=0.5
        Share of the source held out to estimate ``C``.
    random_state : int or None, default=0

    Returns
    -------
    dict
        ``classes``, ``weights`` (``w``), ``source_priors``, ``target_priors``,
        ``confusion`` (the joint matrix ``C``, rows = predicted class) and
        ``condition_number`` of ``C`` (large values mean unreliable weights).

    References
    ----------
    Lipton, Wang and Smola, "Detecting and correcting for label shift with black box
    predictors", ICML 2018.
    """
    if not 0.0 < test_size < 1.0:
        raise ParameterError(f"test_size must be in (0, 1); got {test_size!r}.")
    Xs, Xt = check_pair(Xs, Xt)
    classes, y = _class_labels(ys, len(Xs))
    k = len(classes)
    counts = np.bincount(y, minlength=k)
    if counts.min() < 2:
        raise InputError(f"class {classes[counts.argmin()]!r} has fewer than 2 source samples; "
                         "BBSE needs each class in both the training and held-out parts.")
    X_tr, X_ho, y_tr, y_ho = train_test_split(Xs, y, test_size=test_size, stratify=y,
                                              random_state=random_state)
    clf = (_default_classifier() if estimator is None else clone(estimator)).fit(X_tr, y_tr)
    pred_ho = np.asarray(clf.predict(X_ho)).astype(int)
    pred_t = np.asarray(clf.predict(Xt)).astype(int)
    C = np.zeros((k, k))
    np.add.at(C, (pred_ho, y_ho), 1.0)
    C /= len(y_ho)
    mu_t = np.bincount(pred_t, minlength=k) / len(pred_t)
    w, *_ = np.linalg.lstsq(C, mu_t, rcond=None)
    w = np.clip(w, 0.0, None)
    p_s = counts / counts.sum()
    q = w * p_s
    q = q / q.sum() if q.sum() > 0 else p_s.copy()
    return {
        "classes": [_py(c) for c in classes],
        "weights": w.tolist(),
        "source_priors": p_s.tolist(),
        "target_priors": q.tolist(),
        "confusion": C.tolist(),
        "condition_number": float(np.linalg.cond(C)),
    }


def ben_david_bound(Xs: Any, ys: Any, Xt: Any, estimator: Any = None,
                    domain_estimator: Any = None, cv: int = 5,
                    random_state: int | None = 0) -> dict:
    """The two measurable terms of the Ben-David et al. (2010) target-error bound.

    For a hypothesis ``h`` in a class ``H``,
    ``ε_T(h) ≤ ε_S(h) + ½ d_HΔH(S, T) + λ``, where ``λ`` is the error of the best joint
    hypothesis on both domains, unknown without target labels. This function reports
    ``ε_S`` (cross-validated source error of ``estimator``) and ``½ d_H`` estimated by half
    the proxy A-distance, and their sum, a lower estimate of the bound (``λ`` omitted). A
    large ``½ d_H`` warns that a low source error says little about the target.

    Parameters
    ----------
    Xs, ys, Xt : source features, source class labels, target features
    estimator : scikit-learn classifier, optional
        Task classifier; default: standardisation + ``LogisticRegression``.
    domain_estimator : scikit-learn classifier, optional
        Domain classifier of the proxy A-distance (same default).
    cv : int, default=5
    random_state : int or None, default=0

    Returns
    -------
    dict
        ``source_error``, ``half_d_H``, ``proxy_a_distance``, ``bound_without_lambda``
        (``source_error + half_d_H``) and ``lambda`` (None: not measurable).

    References
    ----------
    Ben-David et al., "A theory of learning from different domains", Machine Learning 79
    (2010).
    """
    Xs, Xt = check_pair(Xs, Xt, min_samples=cv)
    _, y = _class_labels(ys, len(Xs))
    n_splits = int(min(cv, np.bincount(y).min()))
    if n_splits < 2:
        raise InputError("every source class needs at least 2 samples to estimate the source "
                         "error by cross-validation.")
    clf = _default_classifier() if estimator is None else clone(estimator)
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
    err = float(np.mean(cross_val_predict(clf, Xs, y, cv=folds) != y))
    pad = proxy_a_distance(Xs, Xt, domain_estimator, cv, random_state)
    return {"source_error": err, "half_d_H": pad / 2.0, "proxy_a_distance": pad,
            "bound_without_lambda": err + pad / 2.0, "lambda": None}
