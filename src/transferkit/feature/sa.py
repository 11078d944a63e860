"""SA: subspace alignment of the source PCA basis onto the target PCA basis."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import DomainData
from ..base import fit_weighted, make_base_estimator
from ..errors import InputError, ParameterError
from ..registry import register
from ._base import FeatureTransferEstimator

__all__ = ["SA", "pca_basis"]

_DEFAULT_MAX_COMPONENTS = 20


def pca_basis(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the ``n_components`` leading principal directions of the rows of ``X``.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    P : ndarray of shape (n_features, n_components)
        Orthonormal columns, by decreasing explained variance.
    """
    mean = X.mean(axis=0)
    _, _, Vt = np.linalg.svd(X - mean, full_matrices=False)
    return mean, Vt[:n_components].T


@register(family="feature", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class SA(FeatureTransferEstimator):
    """Subspace alignment (Fernando et al., 2013): map the source PCA basis onto the target's.

    Setting: unsupervised (or semi-supervised) domain adaptation where each domain lies
    near a low-dimensional linear subspace and the two subspaces differ. Each domain is
    represented by its own ``k = n_components`` leading principal directions, P_s and
    P_t (d × k, orthonormal columns, computed on each domain centred by its own mean).
    The linear map of the source basis closest to the target basis,

        M* = argmin_M ||P_s M − P_t||_F = P_sᵀ P_t,

    gives the aligned source coordinate system ``P_a = P_s M*``, and the shared
    k-dimensional representation

        source:  x ↦ (x − μ_s) P_s M*,        target:  x ↦ (x − μ_t) P_t.

    (The paper projects uncentred features; centring each domain by its own mean also
    aligns the first moments, and is what its PCA assumes.) The base estimator is trained
    on the aligned source (plus the labelled target samples, mapped with the target map)
    and predicts on target points mapped with the target map.

    Parameters
    ----------
    estimator : estimator or torch.nn.Module, default=None
        Base learner trained on the aligned source; None gives logistic regression
        (classification) or ridge (regression).
    n_components : int, default=None
        Subspace dimension k; None uses ``min(d, 20)``. It must not exceed the number of
        features, nor the number of samples of either domain. With ``k = d`` the subspaces
        are the whole space, and SA only centres each domain.
    random_state : int, RandomState or None, default=None
        Seeds the base learner (the alignment itself is deterministic).

    Attributes
    ----------
    n_components_ : int
        Subspace dimension used.
    source_components_, target_components_ : ndarray of shape (n_features, k)
        The PCA bases P_s and P_t.
    M_ : ndarray of shape (k, k)
        The alignment ``P_sᵀ P_t``.
    source_mean_, target_mean_ : ndarray of shape (n_features,)
        Domain means (all target rows, labelled or not).
    estimator_ : estimator
        The fitted base learner.

    References
    ----------
    Fernando, B., Habrard, A., Sebban, M. and Tuytelaars, T. (2013). Unsupervised visual
    domain adaptation using subspace alignment. ICCV 2013, 2960–2967.

    Examples
    --------
    >>> from transferkit.datasets import make_digits_shift
    >>> from transferkit.feature.sa import SA
    >>> Xs, ys, Xt, yt = make_digits_shift(shift="rotation", random_state=0)
    >>> m = SA(n_components=10).fit(Xs, ys, Xt)
    >>> m.transform(Xt).shape
    (899, 10)
    """

    def __init__(self, estimator: Any = None, n_components: int | None = None,
                 random_state: Any = None):
        self.estimator = estimator
        self.n_components = n_components
        self.random_state = random_state

    def _n_components(self, n_features: int, n_source: int, n_target: int) -> int:
        k = self.n_components
        if k is None:
            k = min(n_features, _DEFAULT_MAX_COMPONENTS)
        elif isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"n_components must be a positive integer or None; got {k!r}.")
        elif k > n_features:
            raise ParameterError(
                f"n_components={k} exceeds the number of features ({n_features}); choose "
                f"n_components <= {n_features}."
            )
        if k > min(n_source, n_target):
            if self.n_components is None:
                return max(min(n_source, n_target), 1)
            raise InputError(
                f"n_components={k} exceeds the number of samples of a domain (source "
                f"{n_source}, target {n_target}); a domain with n samples has at most n "
                "principal directions. Lower n_components or give more samples."
            )
        return int(k)

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        (ns, d), nt = data.Xs.shape, data.Xt.shape[0]
        k = self._n_components(d, ns, nt)
        self.n_components_ = k
        self.source_mean_, self.source_components_ = pca_basis(data.Xs, k)
        self.target_mean_, self.target_components_ = pca_basis(data.Xt, k)
        self.M_ = self.source_components_.T @ self.target_components_
        X = self._transform(data.Xs, "source")
        y = data.ys
        if data.n_labeled:
            X = np.vstack([X, self._transform(data.Xt_labeled, "target")])
            y = np.concatenate([y, data.yt_labeled])
        self.estimator_ = make_base_estimator(self.estimator, data.task, self.random_state)
        fit_weighted(self.estimator_, X, y, None, **fit_params)

    # ------------------------------------------------------------------ representation
    def _transform(self, X: np.ndarray, domain: str) -> np.ndarray:
        if domain == "source":
            return (X - self.source_mean_) @ (self.source_components_ @ self.M_)
        return (X - self.target_mean_) @ self.target_components_
