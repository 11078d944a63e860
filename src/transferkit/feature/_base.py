"""Plumbing shared by the shallow feature methods: ``transform`` and target prediction."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import TransferEstimator
from ..errors import ParameterError


class FeatureTransferEstimator(TransferEstimator):
    """A method that maps each domain into a shared representation, then fits there.

    Subclasses implement ``_transform(X, domain)`` on validated arrays and fit
    ``estimator_`` on transformed data; prediction maps inputs as target rows.
    """

    def transform(self, X: Any, domain: str = "target") -> np.ndarray:
        """The adapted features of rows from ``domain`` ("source" or "target")."""
        X = self._check_predict_X(X)
        if domain not in ("source", "target"):
            raise ParameterError(f"domain must be 'source' or 'target'; got {domain!r}.")
        return self._transform(X, domain)

    def _transform(self, X: np.ndarray, domain: str) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(self._transform(X, "target"))

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        return super()._predict_proba_raw(self._transform(X, "target"))
