"""Baselines every comparison needs: source-only, target-only, source+target.

A transfer method is worth using only if it beats these; the comparison engine always
runs the ones the setting allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import DomainData
from ..base import TransferEstimator, fit_weighted, make_base_estimator
from ..registry import register

__all__ = ["SourceOnly", "TargetOnly", "SourceTarget"]


class _Baseline(TransferEstimator):
    def __init__(self, estimator: Any = None, random_state: Any = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def _training_set(self, data: DomainData) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        X, y = self._training_set(data)
        self.estimator_ = make_base_estimator(self.estimator, data.task, self.random_state)
        fit_weighted(self.estimator_, X, y, None, **fit_params)


@register(family="baseline", settings=("unsupervised", "semi-supervised", "supervised"))
class SourceOnly(_Baseline):
    """Train on the labelled source only and apply the model to the target unchanged.

    The reference every transfer method must beat: if it does not, transfer did not help.

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None
        Base learner; ``None`` uses logistic regression / ridge.
    random_state : int or None
    """

    def _training_set(self, data: DomainData) -> tuple[np.ndarray, np.ndarray]:
        return data.Xs, data.ys


@register(family="baseline", settings=("semi-supervised", "supervised"))
class TargetOnly(_Baseline):
    """Train on the labelled target samples only, ignoring the source.

    When it beats every transfer method, the source is not worth using (negative
    transfer). Needs labelled target samples (``yt``).

    Parameters
    ----------
    estimator, random_state
        As in :class:`SourceOnly`.
    """

    _needs_target_labels = True

    def _training_set(self, data: DomainData) -> tuple[np.ndarray, np.ndarray]:
        return data.Xt_labeled, data.yt_labeled


@register(family="baseline", settings=("semi-supervised", "supervised"))
class SourceTarget(_Baseline):
    """Train on the union of the labelled source and the labelled target samples.

    The naive way to use both domains; needs labelled target samples (``yt``).

    Parameters
    ----------
    estimator, random_state
        As in :class:`SourceOnly`.
    """

    _needs_target_labels = True

    def _training_set(self, data: DomainData) -> tuple[np.ndarray, np.ndarray]:
        return (np.vstack([data.Xs, data.Xt_labeled]),
                np.concatenate([data.ys, data.yt_labeled]))
