"""Importance weighting: fit any estimator on source data reweighted by w(x) ≈ p_t(x)/p_s(x).

Under covariate shift (P_s(Y|X) = P_t(Y|X), P_s(X) ≠ P_t(X)) the target risk equals the
source risk weighted by the density ratio (Shimodaira 2000), so a density-ratio estimate
turns any learner that accepts ``sample_weight`` into a target-domain learner.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import DomainData, check_pair, check_X
from ..base import TransferEstimator, fit_weighted, make_base_estimator
from ..errors import InputError, NotFittedError


class BaseReweighting(TransferEstimator):
    """Base class of the density-ratio weighting methods.

    A subclass implements ``_fit_weights(Xs, Xt) -> w`` (non-negative source weights) and
    ``_predict_weights(X) -> w`` (the ratio at new points). This class gives them the
    public ``fit_weights`` / ``predict_weights`` and the weighted ``fit`` of the base
    estimator. Labelled target samples, when ``yt`` has some, join the training set with
    weight 1 (the weights are normalised to mean 1 over the source).
    """

    def fit_weights(self, Xs: Any, Xt: Any) -> np.ndarray:
        """Estimate the density ratio and return one weight per source sample.

        Parameters
        ----------
        Xs : array-like of shape (n_source, n_features)
        Xt : array-like of shape (n_target, n_features)

        Returns
        -------
        weights : ndarray of shape (n_source,)
            Estimated p_t(x)/p_s(x) at the source points, normalised to mean 1.
        """
        Xs, Xt = check_pair(Xs, Xt)
        self.n_features_in_ = Xs.shape[1]
        w = np.asarray(self._fit_weights(Xs, Xt), dtype=np.float64).ravel()
        w = np.maximum(w, 0.0)
        if not np.isfinite(w).all() or w.sum() <= 0:
            raise InputError(
                f"{type(self).__name__} gave every source sample zero (or non-finite) weight: "
                "the domains barely overlap at this kernel width; try larger widths or check "
                "that source and target measure the same features on the same scale."
            )
        self._weight_scale = 1.0 / w.mean()
        self.weights_ = w * self._weight_scale
        return self.weights_

    def predict_weights(self, X: Any) -> np.ndarray:
        """The estimated density ratio at new points ``X`` (same scale as ``weights_``)."""
        if not hasattr(self, "weights_"):
            raise NotFittedError(
                f"this {type(self).__name__} has no weights yet; call fit or fit_weights first."
            )
        X = check_X(X, "X", n_features=self.n_features_in_)
        return np.maximum(np.asarray(self._predict_weights(X), dtype=np.float64).ravel(),
                          0.0) * self._weight_scale

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        w = self.fit_weights(data.Xs, data.Xt)
        X, y = data.Xs, data.ys
        if data.n_labeled:
            X = np.vstack([X, data.Xt_labeled])
            y = np.concatenate([y, data.yt_labeled])
            w = np.concatenate([w, np.ones(data.n_labeled)])
        self.estimator_ = make_base_estimator(self.estimator, data.task, self.random_state)
        fit_weighted(self.estimator_, X, y, w, **fit_params)

    # subclass hooks -------------------------------------------------------
    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError
