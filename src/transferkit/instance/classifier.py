"""Density ratio from a probabilistic classifier that tells target from source."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ..errors import InputError, ParameterError
from ..registry import register
from ._base import BaseReweighting
from ._kernels import median_distance

__all__ = ["ClassifierWeighting"]

#: Nyström features of the default domain classifier; 200 is as accurate as 300-500 on
#: the covariate-shift benchmarks (d = 2..10) at a fraction of the cost.
_DEFAULT_COMPONENTS = 200


def _default_classifier(X: np.ndarray, seed: int, n_fit: int) -> Pipeline:
    """Kernel logistic regression: standardise, Gaussian Nyström features, logistic loss.

    A general non-parametric classifier (no assumption on the shape of the log-ratio);
    the kernel width is the median pairwise distance of the standardised pooled sample,
    which uses no domain labels and so cannot leak into the cross-fitted probabilities.
    ``n_fit`` is the smallest training set it will see (Nyström needs that many points).
    """
    Z = StandardScaler().fit_transform(X)
    width = median_distance(Z, random_state=seed)
    return Pipeline([
        ("scale", StandardScaler()),
        ("features", Nystroem(kernel="rbf", gamma=1.0 / (2.0 * width**2),
                              n_components=min(_DEFAULT_COMPONENTS, n_fit),
                              random_state=seed)),
        ("logistic", LogisticRegression(C=1.0, max_iter=1000)),
    ])


def _blas_limit(default: bool):
    """One BLAS thread for the default classifier.

    Its logistic-regression solver makes many small matrix-vector products; threaded
    BLAS, competing with scikit-learn's OpenMP loops, made it 3-25x slower on 2 cores.
    """
    return threadpool_limits(1, user_api="blas") if default else nullcontext()


def _with_seed(classifier: Any, seed: int) -> Any:
    clf = clone(classifier)
    params = clf.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        clf.set_params(random_state=seed)
    return clf


@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class ClassifierWeighting(BaseReweighting):
    """Density ratio from a probabilistic domain classifier (Bickel et al., 2007).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Under covariate shift, a classifier trained to tell target (label 1) from source
    (label 0) samples gives the ratio by Bayes' rule:

        w(x) = p_t(x) / p_s(x) = P(target | x) / P(source | x) · n_s / n_t,

    the factor n_s/n_t removing the class prior of the pooled sample (Bickel, Brückner and
    Scheffer, 2007; 2009). The weight is therefore high where the target is dense.

    Probabilities for the source points themselves are cross-fitted (out-of-fold): a
    flexible classifier that has seen a point tends to be over-confident on it, which
    would shrink the weights of exactly the points being weighted. ``predict_weights``
    uses a classifier refitted on all the points.

    Parameters
    ----------
    estimator : estimator or torch.nn.Module, default=None
        Base learner fitted on the reweighted source; None gives logistic regression
        (classification) or ridge (regression).
    classifier : classifier with predict_proba, default=None
        The domain classifier. None gives kernel logistic regression: standardised
        features, 200 Gaussian Nyström features whose width is the median pairwise
        distance, and L2-penalised logistic regression (C=1).
    cv : int, cross-validation splitter or None, default=5
        Folds of the cross-fitting of the source probabilities; None or 1 fits once and
        uses in-sample probabilities.
    clip : float, default=1e-3
        Probabilities are clipped to [clip, 1 - clip] (0 < clip < 0.5) so that weights
        stay finite: at most (1 - clip)/clip · n_s/n_t.
    random_state : int, RandomState or None, default=None
        Seeds the folds, the default classifier and the base learner.

    Attributes
    ----------
    classifier_ : classifier
        Domain classifier fitted on all source and target points.
    source_proba_ : ndarray of shape (n_source,)
        Cross-fitted P(target | x) at the source points (before clipping).
    prior_ratio_ : float
        n_source / n_target.
    weights_ : ndarray of shape (n_source,)
        Estimated ratio at the source points, divided by its mean.
    estimator_ : estimator
        The fitted base learner (after ``fit``).

    References
    ----------
    Bickel, S., Brückner, M. and Scheffer, T. (2007). Discriminative learning for
    differing training and test distributions. ICML, 81–88.

    Bickel, S., Brückner, M. and Scheffer, T. (2009). Discriminative learning under
    covariate shift. JMLR 10, 2137–2155.

    Examples
    --------
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.classifier import ClassifierWeighting
    >>> Xs, ys, Xt, yt = make_covariate_shift(n_source=300, n_target=300, random_state=0)
    >>> model = ClassifierWeighting(random_state=0).fit(Xs, ys, Xt)
    >>> model.weights_.shape
    (300,)
    """

    def __init__(self, estimator: Any = None, classifier: Any = None, cv: Any = 5,
                 clip: float = 1e-3, random_state: Any = None):
        self.estimator = estimator
        self.classifier = classifier
        self.cv = cv
        self.clip = clip
        self.random_state = random_state

    def _splits(self, X: np.ndarray, y: np.ndarray, seed: int) -> list | None:
        """(train, test) index pairs of the cross-fitting, or None for in-sample."""
        cv = self.cv
        if cv is None or (isinstance(cv, (int, np.integer)) and not isinstance(cv, bool)
                          and cv == 1):
            return None
        if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
            if cv < 1:
                raise ParameterError(
                    f"cv must be None, a positive integer or a splitter; got {cv}.")
            if min(np.bincount(y.astype(np.int64))) < cv:
                raise InputError(
                    f"cv={cv} folds need at least {cv} samples in each domain; lower cv."
                )
            return list(StratifiedKFold(int(cv), shuffle=True, random_state=seed).split(X, y))
        if hasattr(cv, "split"):
            return list(cv.split(X, y))
        raise ParameterError(f"cv must be None, a positive integer or a splitter; got {cv!r}.")

    def _target_proba(self, clf: Any, X: np.ndarray) -> np.ndarray:
        # Orientation matters: take the column of class 1 (= target), wherever it sits.
        col = int(np.flatnonzero(np.asarray(clf.classes_) == 1)[0])
        return clf.predict_proba(X)[:, col]

    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        clip = float(self.clip)
        if not (0.0 < clip < 0.5):
            raise ParameterError(f"clip must be in (0, 0.5); got {self.clip!r}.")
        if self.classifier is not None and not hasattr(self.classifier, "predict_proba"):
            raise InputError(
                f"classifier {type(self.classifier).__name__} has no predict_proba; pass a "
                "probabilistic classifier (or wrap it in CalibratedClassifierCV)."
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        ns, nt = len(Xs), len(Xt)
        X = np.vstack([Xs, Xt])
        y = np.concatenate([np.zeros(ns, dtype=np.int64), np.ones(nt, dtype=np.int64)])
        splits = self._splits(X, y, seed)
        n_fit = min(len(train) for train, _ in splits) if splits else len(X)
        base = (_default_classifier(X, seed, n_fit) if self.classifier is None
                else _with_seed(self.classifier, seed))

        proba = np.full(len(X), np.nan)
        with _blas_limit(self.classifier is None):
            if splits is not None:
                for train, test in splits:
                    clf = clone(base).fit(X[train], y[train])
                    proba[test] = self._target_proba(clf, X[test])
                if np.isnan(proba[:ns]).any():
                    raise ParameterError(
                        "the cv splitter left some source points out of every test fold; "
                        "use a partition such as KFold or StratifiedKFold."
                    )
            self.classifier_ = clone(base).fit(X, y)
            if splits is None:
                proba = self._target_proba(self.classifier_, X)
        self.source_proba_ = proba[:ns]
        self.prior_ratio_ = ns / nt
        return self._ratio(self.source_proba_)

    def _ratio(self, p: np.ndarray) -> np.ndarray:
        clip = float(self.clip)
        p = np.clip(p, clip, 1.0 - clip)
        return p / (1.0 - p) * self.prior_ratio_

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:
        with _blas_limit(self.classifier is None):
            return self._ratio(self._target_proba(self.classifier_, X))
