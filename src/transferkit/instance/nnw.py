"""Nearest-neighbour weighting: count the target points in each source point's Voronoi cell."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..errors import ParameterError
from ..registry import register
from ._base import BaseReweighting

__all__ = ["NearestNeighborsWeighting"]


@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class NearestNeighborsWeighting(BaseReweighting):
    """Nearest-neighbour weighting (Loog, 2012).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Under covariate shift the density ratio at a source point is estimated by the number
    of target points that fall in its Voronoi cell, i.e. whose nearest source point it
    is: the cell of ``x_i`` has probability ≈ 1/n_s under the source and ≈ p_t/(n_s p_s)
    under the target, so the count divided by n_t/n_s estimates ``p_t(x_i)/p_s(x_i)``.
    Loog adds Laplace smoothing (one pseudo-count per cell) so that no source point gets
    weight zero. With ``n_neighbors = k > 1`` each target point spreads one vote evenly
    over its k nearest source points (a smoother estimate; k = 1 is the paper's method).
    Only neighbour queries are needed (scikit-learn ``NearestNeighbors``), never an
    n_s × n_t matrix.

    Parameters
    ----------
    estimator : estimator or torch.nn.Module, default=None
        Base learner fitted on the reweighted source; None gives logistic regression
        (classification) or ridge (regression).
    n_neighbors : int, default=1
        Source neighbours that share each target point's vote.
    smoothing : float, default=1.0
        Laplace pseudo-count added to every source point's count (0 allows zero weights).
    metric : str, default="euclidean"
        Any metric accepted by :class:`sklearn.neighbors.NearestNeighbors`.
    n_jobs : int, default=None
        Parallel jobs of the neighbour search.
    random_state : int, RandomState or None, default=None
        Seeds the base learner (the weights themselves are deterministic).

    Attributes
    ----------
    counts_ : ndarray of shape (n_source,)
        Target votes received by each source point (sums to n_target).
    cell_weights_ : ndarray of shape (n_source,)
        ``(counts_ + smoothing) · n_s / n_t``, the ratio estimate on each Voronoi cell.
    weights_ : ndarray of shape (n_source,)
        ``cell_weights_`` divided by its mean.
    nn_ : NearestNeighbors
        The neighbour index over the source sample.
    estimator_ : estimator
        The fitted base learner (after ``fit``).

    Notes
    -----
    ``predict_weights(X)`` gives each new point the weight of its nearest source point,
    i.e. the estimate of the Voronoi cell it falls in (piecewise constant).

    References
    ----------
    Loog, M. (2012). Nearest neighbor-based importance weighting. IEEE International
    Workshop on Machine Learning for Signal Processing (MLSP), 1–6.

    Examples
    --------
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.nnw import NearestNeighborsWeighting
    >>> Xs, ys, Xt, yt = make_covariate_shift(n_source=300, n_target=300, random_state=0)
    >>> model = NearestNeighborsWeighting().fit(Xs, ys, Xt)
    >>> int(model.counts_.sum())
    300
    """

    def __init__(self, estimator: Any = None, n_neighbors: int = 1, smoothing: float = 1.0,
                 metric: str = "euclidean", n_jobs: int | None = None,
                 random_state: Any = None):
        self.estimator = estimator
        self.n_neighbors = n_neighbors
        self.smoothing = smoothing
        self.metric = metric
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"n_neighbors must be a positive integer; got {k!r}.")
        if k > len(Xs):
            raise ParameterError(
                f"n_neighbors={k} exceeds the {len(Xs)} source samples; lower it."
            )
        alpha = float(self.smoothing)
        if not np.isfinite(alpha) or alpha < 0:
            raise ParameterError(
                f"smoothing must be a non-negative number; got {self.smoothing!r}.")
        self.nn_ = NearestNeighbors(n_neighbors=int(k), metric=self.metric,
                                    n_jobs=self.n_jobs).fit(Xs)
        idx = self.nn_.kneighbors(Xt, return_distance=False)
        self.counts_ = np.bincount(idx.ravel(), minlength=len(Xs)) / float(k)
        self.cell_weights_ = (self.counts_ + alpha) * (len(Xs) / len(Xt))
        return self.cell_weights_

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:
        idx = self.nn_.kneighbors(X, n_neighbors=1, return_distance=False)[:, 0]
        return self.cell_weights_[idx]
