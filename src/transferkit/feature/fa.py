"""FA: feature augmentation, Daumé III's "frustratingly easy" supervised adaptation."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import DomainData
from ..base import fit_weighted, make_base_estimator
from ..errors import ParameterError
from ..registry import register
from ._base import FeatureTransferEstimator

__all__ = ["FA", "augment"]


def augment(X: np.ndarray, domain: str) -> np.ndarray:
    """Daumé's augmented layout: source ``[x, x, 0]``, target ``[x, 0, x]``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, d)
    domain : {"source", "target"}

    Returns
    -------
    ndarray of shape (n_samples, 3 d)
        Blocks: shared, source-specific, target-specific.
    """
    if domain not in ("source", "target"):
        raise ParameterError(f"domain must be 'source' or 'target'; got {domain!r}.")
    zeros = np.zeros_like(X)
    if domain == "source":
        return np.hstack([X, X, zeros])
    return np.hstack([X, zeros, X])


@register(family="feature", settings=("semi-supervised", "supervised"), backend="sklearn")
class FA(FeatureTransferEstimator):
    """Feature augmentation (Daumé III, 2007): shared + domain-specific copies of each feature.

    Setting: supervised (or semi-supervised) domain adaptation, with labelled source data
    and some labelled target data; unlabelled target rows are not used. Every input is
    mapped to three blocks, one shared and one per domain,

        Φ_s(x) = [x, x, 0]   (source),        Φ_t(x) = [x, 0, x]   (target),

    and a single base estimator is trained on the labelled samples of both domains. For
    a linear model with weights ``[w_0, w_s, w_t]`` the source is scored with
    ``w_0 + w_s`` and the target with ``w_0 + w_t``: the shared part learns what the
    domains agree on from all the data, and the target part only the correction the few
    target labels support. With an L2 penalty (the default logistic regression / ridge
    have one) the split is automatic: putting agreement in ``w_0`` costs half the norm of
    duplicating it in ``w_s`` and ``w_t``. Predictions use the target map ``Φ_t``.

    Parameters
    ----------
    estimator : estimator or torch.nn.Module, default=None
        Base learner trained on the augmented features; None gives logistic regression
        (classification) or ridge (regression). A regularised (ideally linear or kernel)
        learner is what the method assumes.
    random_state : int, RandomState or None, default=None
        Seeds the base learner.

    Attributes
    ----------
    n_augmented_features_ : int
        ``3 * n_features``, the width of the augmented representation.
    estimator_ : estimator
        The fitted base learner.

    References
    ----------
    Daumé III, H. (2007). Frustratingly easy domain adaptation. Proceedings of the 45th
    Annual Meeting of the ACL, 256–263.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.feature.fa import FA
    >>> m = FA().fit(np.eye(3)[:2] * [[1], [-1]], [0, 1], np.ones((1, 3)), [1])
    >>> m.transform([[1.0, 2.0, 3.0]], domain="source")
    array([[1., 2., 3., 1., 2., 3., 0., 0., 0.]])
    """

    _needs_target_labels = True

    def __init__(self, estimator: Any = None, random_state: Any = None):
        self.estimator = estimator
        self.random_state = random_state

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        X = np.vstack([augment(data.Xs, "source"), augment(data.Xt_labeled, "target")])
        y = np.concatenate([data.ys, data.yt_labeled])
        self.n_augmented_features_ = X.shape[1]
        self.estimator_ = make_base_estimator(self.estimator, data.task, self.random_state)
        fit_weighted(self.estimator_, X, y, None, **fit_params)

    def _transform(self, X: np.ndarray, domain: str) -> np.ndarray:
        return augment(X, domain)
