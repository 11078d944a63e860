"""Boosting for transfer with a few labelled target samples (TrAdaBoost family).

Source and labelled target samples are pooled and boosted together. Source samples that
the current learner gets wrong are taken to disagree with the target and lose weight;
target samples it gets wrong gain weight, as in AdaBoost. One loop, :func:`_boost`, serves
all three methods; they differ only in how the error is measured and how the source is
updated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import brentq
from sklearn.model_selection import KFold
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import check_random_state

from .._validation import CLASSIFICATION, REGRESSION, DomainData
from ..base import TransferEstimator, fit_weighted, make_base_estimator
from ..errors import InputError, ParameterError
from ..registry import register

__all__ = ["TrAdaBoost", "TrAdaBoostR2", "TwoStageTrAdaBoostR2"]

# Floor on the weighted target error: a learner perfect on the labelled target would get
# an infinite vote; with this floor it gets a large finite one, ln((1 - 1e-10) / 1e-10) ≈ 23.
_MIN_ERROR = 1e-10
_LOSSES = ("linear", "square", "exponential")


class _Boosted(NamedTuple):
    estimators: list
    alphas: np.ndarray  # vote weights lr * ln(1 / beta_t)
    errors: np.ndarray  # weighted error on the labelled target, before clipping
    weights: np.ndarray  # final weights, source rows first, summing to 1


def _boost(X: np.ndarray, y: np.ndarray, n_source: int, w: np.ndarray, *, n_estimators: int,
           lr: float, new_estimator: Callable[[], Any],
           sample_errors: Callable[[Any, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
           source_beta: float | None, dynamic: bool = False, fit_params: dict) -> _Boosted:
    """The boosting loop shared by TrAdaBoost, TrAdaBoost.R2 and AdaBoost.R2'.

    Rows ``:n_source`` are source, the rest labelled target. Each round fits a learner on
    weights ``w``, measures per-sample errors in [0, 1], computes the weighted target error
    eps and beta_t = eps / (1 - eps), then multiplies target weights by
    beta_t^(-lr * e) and source weights by ``source_beta``^(lr * e) (times 2(1 - eps) when
    ``dynamic``). ``source_beta=None`` freezes the source weights and rescales the target
    so its total mass is unchanged (AdaBoost.R2' of Pardoe & Stone).
    """
    w = w / w.sum()
    estimators, alphas, errors = [], [], []
    src, tgt = slice(None, n_source), slice(n_source, None)
    for _ in range(n_estimators):
        est = new_estimator()
        _fit_support(est, X, y, w, fit_params)
        e = sample_errors(est, X, y, w)
        eps = float(np.sum(w[tgt] * e[tgt]) / np.sum(w[tgt]))
        errors.append(eps)
        # eps >= 0.5: no better than chance on the target, so beta_t = 1: no vote and no
        # change of the target weights (the source update still goes on).
        eps_c = min(max(eps, _MIN_ERROR), 0.5)
        beta_t = eps_c / (1.0 - eps_c)
        estimators.append(est)
        alphas.append(lr * np.log(1.0 / beta_t))
        w = w.copy()
        mass = w[tgt].sum()
        w[tgt] *= beta_t ** (-lr * e[tgt])
        if source_beta is None:
            w[tgt] *= mass / w[tgt].sum()
        else:
            # Al-Stouhi & Reddy (2011): C_t = 2(1 - eps_t) stops the source weights from
            # draining to the target merely because target weights grow.
            w[src] *= source_beta ** (lr * e[src]) * (2.0 * (1.0 - eps_c) if dynamic else 1.0)
            w /= w.sum()
    return _Boosted(estimators, np.asarray(alphas), np.asarray(errors), w)


def _fit_support(est: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray, fit_params: dict) -> None:
    # Zero-weight rows are dropped; the rest are rescaled to mean 1 so regularised
    # learners (ridge, logistic, torch) keep their usual regularisation strength.
    keep = w > 0
    fit_weighted(est, X[keep], y[keep], w[keep] * (keep.sum() / w[keep].sum()), **fit_params)


def _misclassified(est: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (np.asarray(est.predict(X)).ravel() != y).astype(np.float64)


def _r2_errors(loss: str) -> Callable[[Any, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """AdaBoost.R2 adjusted errors (Drucker 1997): |y - h| / D mapped through ``loss``."""

    def errors(est: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        r = np.abs(np.asarray(est.predict(X), dtype=np.float64).ravel() - y)
        d = r[w > 0].max()  # D_t: the largest residual on the rows it was trained on
        if d <= 0:
            return np.zeros_like(r)
        r = np.minimum(r / d, 1.0)
        if loss == "square":
            return r**2
        if loss == "exponential":
            return 1.0 - np.exp(-r)
        return r

    return errors


def _weighted_median(preds: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Per column of ``preds`` (n_estimators, n), the ``alphas``-weighted median."""
    if alphas.sum() <= 0:  # every learner no better than chance: plain median
        alphas = np.ones_like(alphas)
    order = np.argsort(preds, axis=0)
    cum = np.cumsum(alphas[order], axis=0)
    first = np.argmax(cum >= 0.5 * cum[-1], axis=0)
    cols = np.arange(preds.shape[1])
    return preds[order[first, cols], cols]


def _median_predict(estimators: list, alphas: np.ndarray, X: np.ndarray) -> np.ndarray:
    preds = np.stack([np.asarray(e.predict(X), dtype=np.float64).ravel() for e in estimators])
    return _weighted_median(preds, alphas)


def _check_params(est: Any) -> None:
    if not isinstance(est.n_estimators, (int, np.integer)) or est.n_estimators < 1:
        raise ParameterError(f"n_estimators must be a positive integer, got {est.n_estimators!r}.")
    if not np.isscalar(est.lr) or not est.lr > 0:
        raise ParameterError(f"lr must be a positive number, got {est.lr!r}.")
    loss = getattr(est, "loss", "linear")
    if loss not in _LOSSES:
        raise ParameterError(f"loss must be one of {_LOSSES}, got {loss!r}.")


class _TransferBoostBase(TransferEstimator):
    """Shared plumbing: pooled data, base-learner factory, second-half ensemble."""

    _needs_target_labels = True
    _default_depth = 3

    def _pool(self, data: DomainData) -> tuple[np.ndarray, np.ndarray]:
        _check_params(self)
        return (np.vstack([data.Xs, data.Xt_labeled]),
                np.concatenate([data.ys, data.yt_labeled]))

    def _factory(self, task: str, rng: np.random.RandomState) -> Callable[[], Any]:
        if self.estimator is None:
            tree = DecisionTreeClassifier if task == CLASSIFICATION else DecisionTreeRegressor
            template = tree(max_depth=self._default_depth)
        else:
            template = self.estimator
        return lambda: make_base_estimator(template, task, rng.randint(2**31 - 1))

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        X, y = self._pool(data)
        n_s = data.Xs.shape[0]
        beta = 1.0 / (1.0 + np.sqrt(2.0 * np.log(n_s) / self.n_estimators))
        errs = _misclassified if data.task == CLASSIFICATION else _r2_errors(self.loss)
        out = _boost(X, y, n_s, np.ones(len(y)), n_estimators=self.n_estimators, lr=self.lr,
                     new_estimator=self._factory(data.task, check_random_state(self.random_state)),
                     sample_errors=errs, source_beta=beta,
                     dynamic=bool(getattr(self, "dynamic", False)), fit_params=fit_params)
        self.estimators_, self.estimator_weights_, self.errors_, self.weights_ = out

    def _voters(self) -> tuple[list, np.ndarray]:
        # Dai et al. vote with t = ceil(N/2)..N only: the early learners were fitted while
        # the misleading source samples still carried weight.
        start = int(np.ceil(len(self.estimators_) / 2)) - 1
        return self.estimators_[start:], self.estimator_weights_[start:]

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return _median_predict(*self._voters(), X)


@register(family="instance", settings=("semi-supervised", "supervised"), backend="sklearn")
class TrAdaBoost(_TransferBoostBase):
    """Transfer AdaBoost for classification (Dai, Yang, Xue & Yu, 2007).

    Boosts a learner on the pooled source and labelled target samples. After each round a
    misclassified target sample gains weight (by beta_t^-1, beta_t = eps_t / (1 - eps_t),
    eps_t the weighted error on the labelled target only) and a misclassified source
    sample loses weight (by beta = 1 / (1 + sqrt(2 ln n_source / n_estimators))), so the
    source samples that contradict the target fade out. The prediction is the weighted
    vote (weights ln(1 / beta_t)) of the second half of the learners.

    Setting: semi-supervised or supervised domain adaptation (a few labelled target
    samples; unlabelled target rows are not used).

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        Base classifier; it must accept ``sample_weight``. ``None`` uses
        ``DecisionTreeClassifier(max_depth=3)``: weak enough to boost, strong enough for
        the second-half vote of a few learners to draw a curved boundary.
    n_estimators : int, default=10
        Boosting rounds N; the last N - ceil(N/2) + 1 learners vote.
    lr : float, default=1.0
        Learning rate: every weight-update exponent (and vote weight) is scaled by it.
    dynamic : bool, default=False
        Multiply the source weights by C_t = 2(1 - eps_t) each round, the correction of
        Al-Stouhi & Reddy (2011) that keeps the source weights from converging
        prematurely.
    random_state : int, RandomState or None, default=None
        Seeds the base learners.

    Attributes
    ----------
    estimators_ : list
        The N fitted learners.
    estimator_weights_ : ndarray of shape (N,)
        Vote weights lr * ln((1 - eps_t) / eps_t); 0 for learners with eps_t >= 0.5.
    errors_ : ndarray of shape (N,)
        eps_t, the weighted 0/1 error of each learner on the labelled target.
    weights_ : ndarray of shape (n_source + n_labeled_target,)
        Final sample weights (source rows first, then labelled target rows), summing to 1.
    classes_ : ndarray
        Original class labels.

    Notes
    -----
    Multi-class problems use the 0/1 loss |h - y| := 1[h != y], which for two classes is
    the paper's loss. eps_t >= 0.5 is clipped to 0.5 (beta_t = 1: no vote, target weights
    unchanged); eps_t = 0 is raised to 1e-10 (a large finite vote). Each learner is fitted
    on the weights rescaled to mean 1. ``predict_proba`` returns the normalised weighted
    vote of the second half, so its argmax is ``predict``; it is not calibrated.

    A source sample loses weight only when a learner misclassifies it. Scattered
    contradicting samples do (see ``weights_``); a contradicting source *cluster* that
    outweighs the few target labels in its region is never misclassified, the target
    error settles at 0.5 and boosting stalls there; more target labels in that region
    help.

    References
    ----------
    Dai, W., Yang, Q., Xue, G.-R. & Yu, Y. (2007). Boosting for transfer learning. ICML.
    Al-Stouhi, S. & Reddy, C. K. (2011). Adaptive boosting for transfer learning using
    dynamic updates. ECML PKDD.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.instance.tradaboost import TrAdaBoost
    >>> Xs, ys, Xt, yt = make_two_moons_shift(rotation=40, random_state=0)
    >>> yt_few = np.full(len(yt), np.nan)
    >>> yt_few[:15] = yt[:15]
    >>> model = TrAdaBoost(n_estimators=20, random_state=0).fit(Xs, ys, Xt, yt_few)
    >>> model.predict(Xt).shape
    (100,)
    """

    _tasks = (CLASSIFICATION,)

    def __init__(self, estimator: Any = None, n_estimators: int = 10, lr: float = 1.0,
                 dynamic: bool = False, random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.lr = lr
        self.dynamic = dynamic
        self.random_state = random_state

    def _predict_proba_raw(self, X: np.ndarray) -> np.ndarray:
        voters, alphas = self._voters()
        if alphas.sum() <= 0:
            alphas = np.ones_like(alphas)
        votes = np.zeros((X.shape[0], len(self.classes_)))
        rows = np.arange(X.shape[0])
        for est, a in zip(voters, alphas, strict=True):
            votes[rows, np.asarray(est.predict(X)).astype(np.int64).ravel()] += a
        return votes / alphas.sum()

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self._predict_proba_raw(X).argmax(axis=1)


@register(family="instance", settings=("semi-supervised", "supervised"), backend="sklearn")
class TrAdaBoostR2(_TransferBoostBase):
    """Transfer AdaBoost.R2 for regression (Pardoe & Stone, 2010).

    TrAdaBoost with AdaBoost.R2's errors (Drucker, 1997): each round the residuals are
    divided by the largest one and mapped through ``loss`` to e_i in [0, 1]; target
    weights grow by beta_t^-e_i (beta_t from the weighted target error) and source
    weights shrink by beta^e_i, beta = 1 / (1 + sqrt(2 ln n_source / N)). The prediction
    is the weighted median of the second half of the learners.

    Setting: semi-supervised or supervised domain adaptation (a few labelled target
    samples; unlabelled target rows are not used).

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        Base regressor accepting ``sample_weight``; ``None`` uses
        ``DecisionTreeRegressor(max_depth=3)``.
    n_estimators : int, default=10
        Boosting rounds N.
    lr : float, default=1.0
        Scales every weight-update exponent and vote weight.
    loss : {"linear", "square", "exponential"}, default="linear"
        Map from normalised residual r to error: r, r², 1 - exp(-r).
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    estimators_ : list
    estimator_weights_ : ndarray of shape (N,)
        lr * ln((1 - eps_t) / eps_t); 0 where eps_t >= 0.5.
    errors_ : ndarray of shape (N,)
        Weighted adjusted error eps_t on the labelled target.
    weights_ : ndarray of shape (n_source + n_labeled_target,)
        Final sample weights, source rows first, summing to 1.

    Notes
    -----
    AdaBoost.R2 stops once eps_t >= 0.5; here such a learner gets vote 0 and leaves the
    target weights unchanged while the source keeps shrinking, so later rounds can
    recover. Pardoe & Stone observe that the source weights often drain too fast; see
    :class:`TwoStageTrAdaBoostR2`.

    References
    ----------
    Pardoe, D. & Stone, P. (2010). Boosting for regression transfer. ICML.
    Drucker, H. (1997). Improving regressors using boosting techniques. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.tradaboost import TrAdaBoostR2
    >>> Xs, ys, Xt, yt = make_covariate_shift(200, 100, task="regression")
    >>> yt_few = np.where(np.arange(100) < 20, yt, np.nan)
    >>> TrAdaBoostR2(random_state=0).fit(Xs, ys, Xt, yt_few).predict(Xt).shape
    (100,)
    """

    _tasks = (REGRESSION,)

    def __init__(self, estimator: Any = None, n_estimators: int = 10, lr: float = 1.0,
                 loss: str = "linear", random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.lr = lr
        self.loss = loss
        self.random_state = random_state


@register(family="instance", settings=("semi-supervised", "supervised"), backend="sklearn")
class TwoStageTrAdaBoostR2(_TransferBoostBase):
    """Two-stage TrAdaBoost.R2 for regression (Pardoe & Stone, 2010).

    Stage 1 moves the total target weight from n_t / (n_s + n_t) to 1 in ``n_steps``
    equal steps; at each step the source weights shrink by beta^e_i, beta found by
    bisection to reach that step's target mass, e_i the adjusted errors of one learner
    fitted at the current weights, so the source samples that fit the target worst go
    first. At each weighting, AdaBoost.R2' (AdaBoost.R2 that updates only the target
    weights) is scored by ``cv``-fold cross-validation on the labelled target (source
    always in training). Stage 2 refits AdaBoost.R2' at the best weighting; it predicts
    by the weighted median of all its learners.

    Setting: semi-supervised or supervised domain adaptation (at least two labelled
    target samples; unlabelled target rows are not used).

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        Base regressor accepting ``sample_weight``; ``None`` uses
        ``DecisionTreeRegressor(max_depth=3)``.
    n_estimators : int, default=10
        Rounds of each inner AdaBoost.R2'.
    n_steps : int, default=10
        Stage-1 steps S; the last one gives the source no weight (target only).
    cv : int, default=5
        Folds over the labelled target (leave-one-out when there are fewer samples).
    lr : float, default=1.0
        Scales the inner boosting's weight updates and votes.
    loss : {"linear", "square", "exponential"}, default="linear"
    random_state : int, RandomState or None, default=None
        Seeds the learners and the fold split.

    Attributes
    ----------
    estimators_, estimator_weights_, errors_ : list, ndarray, ndarray
        Learners, vote weights and weighted target errors of the chosen AdaBoost.R2'.
    weights_ : ndarray of shape (n_source + n_labeled_target,)
        Final weights of the chosen AdaBoost.R2' (source rows first, summing to 1).
    cv_errors_ : ndarray of shape (n_steps,)
        Cross-validated mean squared error on the labelled target at each step.
    best_step_ : int
        Index of the chosen step (0: source and target samples equally weighted).
    target_fractions_ : ndarray of shape (n_steps,)
        Total target weight at each step.

    Notes
    -----
    AdaBoost.R2' keeps the total source weight of its step: after each round it rescales
    the target weights to their previous total, so the inner boosting does not undo the
    stage-1 weighting. Its target error decides beta_t, as in TrAdaBoost.R2.

    References
    ----------
    Pardoe, D. & Stone, P. (2010). Boosting for regression transfer. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.tradaboost import TwoStageTrAdaBoostR2
    >>> Xs, ys, Xt, yt = make_covariate_shift(200, 100, task="regression")
    >>> yt_few = np.where(np.arange(100) < 20, yt, np.nan)
    >>> m = TwoStageTrAdaBoostR2(n_steps=5, random_state=0).fit(Xs, ys, Xt, yt_few)
    >>> m.cv_errors_.shape
    (5,)
    """

    _tasks = (REGRESSION,)

    def __init__(self, estimator: Any = None, n_estimators: int = 10, n_steps: int = 10,
                 cv: int = 5, lr: float = 1.0, loss: str = "linear",
                 random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.n_steps = n_steps
        self.cv = cv
        self.lr = lr
        self.loss = loss
        self.random_state = random_state

    def _fit(self, data: DomainData, **fit_params: Any) -> None:
        X, y = self._pool(data)
        for name, low in (("n_steps", 1), ("cv", 2)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < low:
                raise ParameterError(f"{name} must be an integer >= {low}, got {v!r}.")
        n_s, n_t = data.Xs.shape[0], data.n_labeled
        if n_t < 2:
            raise InputError("TwoStageTrAdaBoostR2 cross-validates on the labelled target and "
                             "needs at least 2 labelled target samples; pass more in yt.")
        rng = check_random_state(self.random_state)
        new_est, errs = self._factory(data.task, rng), _r2_errors(self.loss)
        folds = list(KFold(min(self.cv, n_t), shuffle=True,
                           random_state=rng.randint(2**31 - 1)).split(np.arange(n_t)))

        def inner(rows: np.ndarray, w: np.ndarray) -> _Boosted:
            return _boost(X[rows], y[rows], n_s, w[rows], n_estimators=self.n_estimators,
                          lr=self.lr, new_estimator=new_est, sample_errors=errs,
                          source_beta=None, fit_params=fit_params)

        f0 = n_t / (n_s + n_t)
        fractions = f0 + (1.0 - f0) * np.arange(self.n_steps) / max(self.n_steps - 1, 1)
        w = np.full(n_s + n_t, 1.0 / (n_s + n_t))
        steps, cv_errors = [], []
        for s in range(len(fractions)):
            sse = 0.0
            for train, test in folds:
                rows = np.concatenate([np.arange(n_s), n_s + train])
                w_cv = w.copy()  # the held-out fold's mass goes to the training fold
                w_cv[n_s + train] *= w[n_s:].sum() / w[n_s + train].sum()
                fit = inner(rows, w_cv)
                pred = _median_predict(fit.estimators, fit.alphas, X[n_s + test])
                sse += float(np.sum((pred - y[n_s + test]) ** 2))
            cv_errors.append(sse / n_t)
            steps.append(w)
            if s + 1 < len(fractions):
                h = new_est()
                _fit_support(h, X, y, w, fit_params)
                w = _shift_to_target(w, errs(h, X, y, w), n_s, fractions[s + 1])
        self.cv_errors_ = np.asarray(cv_errors)
        self.target_fractions_ = fractions
        self.best_step_ = int(np.argmin(self.cv_errors_))
        out = inner(np.arange(n_s + n_t), steps[self.best_step_])
        self.estimators_, self.estimator_weights_, self.errors_, self.weights_ = out

    def _voters(self) -> tuple[list, np.ndarray]:
        return self.estimators_, self.estimator_weights_  # AdaBoost.R2: all learners vote


def _shift_to_target(w: np.ndarray, e: np.ndarray, n_source: int, frac: float) -> np.ndarray:
    """Shrink source weights by beta^e so the target holds ``frac`` of the total."""
    w = w / w.sum()
    ws, es, tgt_mass = w[:n_source], e[:n_source], w[n_source:].sum()
    want = tgt_mass * (1.0 - frac) / frac  # source mass that leaves the target ``frac``
    if want <= 0:
        new_src = np.zeros_like(ws)
    elif np.sum(ws[es == 0]) >= want or ws.sum() <= want:
        new_src = ws * (want / ws.sum())  # beta cannot reach it (errors all 0): rescale
    else:
        beta = brentq(lambda b: np.sum(ws * b**es) - want, 0.0, 1.0, xtol=1e-12)
        new_src = ws * beta**es
    out = np.concatenate([new_src, w[n_source:]])
    return out / out.sum()
