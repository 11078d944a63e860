"""Distances between a source and a target sample: proxy A-distance, sliced Wasserstein,
CORAL distance.

References
----------
Ben-David, Blitzer, Crammer, Kulesza, Pereira and Vaughan, "A theory of learning from
different domains", Machine Learning 79 (2010).
Bonneel, Rabin, Peyré and Pfister, "Sliced and Radon Wasserstein barycenters of
measures", JMIV 51 (2015).
Sun and Saenko, "Deep CORAL: correlation alignment for deep domain adaptation",
ECCV Workshops 2016.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import check_pair
from ..errors import ParameterError

__all__ = ["domain_classifier_error", "proxy_a_distance", "sliced_wasserstein",
           "coral_distance"]


def _default_domain_classifier() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def domain_classifier_error(Xs: Any, Xt: Any, estimator: Any = None, cv: int = 5,
                            random_state: int | None = 0) -> float:
    """Cross-validated balanced error of a classifier that tells source from target.

    The balanced error (mean of the per-domain error rates) is 0.5 for a classifier that
    cannot tell the domains apart, whatever their sizes.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_source, d) and (n_target, d)
    estimator : scikit-learn classifier, optional
        Domain classifier; default: standardisation + ``LogisticRegression``.
    cv : int, default=5
        Number of stratified folds.
    random_state : int or None, default=0
        Seed of the fold split.

    Returns
    -------
    float
        Balanced error in [0, 1].
    """
    Xs, Xt = check_pair(Xs, Xt, min_samples=cv)
    if int(cv) < 2:
        raise ParameterError(f"cv must be >= 2; got {cv!r}.")
    X = np.vstack([Xs, Xt])
    d = np.r_[np.zeros(len(Xs), dtype=int), np.ones(len(Xt), dtype=int)]
    clf = _default_domain_classifier() if estimator is None else clone(estimator)
    folds = StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    pred = cross_val_predict(clf, X, d, cv=folds)
    return float(0.5 * (np.mean(pred[d == 0] != 0) + np.mean(pred[d == 1] != 1)))


def proxy_a_distance(Xs: Any, Xt: Any, estimator: Any = None, cv: int = 5,
                     random_state: int | None = 0) -> float:
    """Proxy A-distance ``PAD = 2 (1 − 2 ε)`` from a cross-validated domain classifier.

    ``ε`` is the held-out (balanced) error of a classifier trained to separate source from
    target samples (:func:`domain_classifier_error`). Ben-David et al. (2007, 2010) use it
    as a computable stand-in for the H-divergence ``d_H`` of their adaptation bound. PAD
    is near 0 when the domains are indistinguishable to the classifier and 2 when they are
    perfectly separable. Values below 0 (an error above 0.5, which is noise) are clipped
    to 0.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_source, d) and (n_target, d)
    estimator : scikit-learn classifier, optional
        Domain classifier; default: standardisation + ``LogisticRegression``. A more
        flexible classifier (e.g. gradient boosting) detects non-linear shifts.
    cv : int, default=5
        Number of stratified folds.
    random_state : int or None, default=0

    Returns
    -------
    float
        PAD in [0, 2].

    References
    ----------
    Ben-David, Blitzer, Crammer and Pereira, "Analysis of representations for domain
    adaptation", NeurIPS 2007; Ben-David et al., "A theory of learning from different
    domains", Machine Learning 79 (2010).
    """
    err = domain_classifier_error(Xs, Xt, estimator, cv, random_state)
    return float(min(2.0, max(0.0, 2.0 * (1.0 - 2.0 * err))))


def _quantile_differences(ps: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Differences of the empirical quantile functions on their merged breakpoints.

    ``ps`` (n, L) and ``pt`` (m, L) hold L projected samples. Returns the widths ``w`` of
    the pieces of [0, 1] on which both quantile functions are constant and the
    differences ``F⁻¹(u) − G⁻¹(u)`` there, shape (pieces, L): exact for any n and m.
    """
    n, m = len(ps), len(pt)
    ps = np.sort(ps, axis=0)
    pt = np.sort(pt, axis=0)
    u = np.unique(np.r_[np.arange(1, n + 1) / n, np.arange(1, m + 1) / m])
    w = np.diff(np.r_[0.0, u])
    mid = u - w / 2
    ix = np.minimum((mid * n).astype(int), n - 1)
    it = np.minimum((mid * m).astype(int), m - 1)
    return w, ps[ix] - pt[it]


def sliced_wasserstein(Xs: Any, Xt: Any, n_projections: int = 100, p: int = 1,
                       random_state: int | None = 0) -> float:
    """Sliced p-Wasserstein distance between two samples.

    ``SW_p(P, Q) = ( E_θ [ W_p^p(θᵀP, θᵀQ) ] )^(1/p)``, θ uniform on the unit sphere,
    estimated with ``n_projections`` random directions. Each 1-D distance is exact: it
    integrates the difference of the two empirical quantile functions, so samples of
    different sizes need no resampling. For d = 1 the result equals the exact 1-D
    Wasserstein distance (``scipy.stats.wasserstein_distance`` for p = 1).

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_source, d) and (n_target, d)
    n_projections : int, default=100
        Number of random directions (ignored for d = 1).
    p : int, default=1
        Order of the Wasserstein distance (≥ 1).
    random_state : int or None, default=0
        Seed of the directions.

    Returns
    -------
    float

    References
    ----------
    Bonneel, Rabin, Peyré and Pfister, "Sliced and Radon Wasserstein barycenters of
    measures", JMIV 51 (2015).
    """
    if int(n_projections) < 1:
        raise ParameterError(f"n_projections must be >= 1; got {n_projections!r}.")
    if not p >= 1:
        raise ParameterError(f"p must be >= 1; got {p!r}.")
    Xs, Xt = check_pair(Xs, Xt)
    d = Xs.shape[1]
    if d == 1:
        theta = np.ones((1, 1))
    else:
        rng = np.random.default_rng(random_state)
        theta = rng.normal(size=(d, int(n_projections)))
        theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    w, diff = _quantile_differences(Xs @ theta, Xt @ theta)
    wp = w @ np.abs(diff) ** p  # W_p^p per direction
    return float(np.mean(wp) ** (1.0 / p))


def coral_distance(Xs: Any, Xt: Any) -> float:
    """CORAL distance ``||C_s − C_t||_F² / (4 d²)`` between the feature covariances.

    The loss of Deep CORAL (Sun and Saenko 2016): zero when both domains have the same
    second-order statistics. It ignores the means (compare them with the MMD or the drift
    ranking) and depends on the feature scales.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_source, d) and (n_target, d), at least 2 rows each.

    Returns
    -------
    float

    References
    ----------
    Sun and Saenko, "Deep CORAL: correlation alignment for deep domain adaptation",
    ECCV Workshops 2016.
    """
    Xs, Xt = check_pair(Xs, Xt, min_samples=2)
    d = Xs.shape[1]
    Cs = np.atleast_2d(np.cov(Xs, rowvar=False))
    Ct = np.atleast_2d(np.cov(Xt, rowvar=False))
    return float(np.sum((Cs - Ct) ** 2) / (4.0 * d * d))
