"""uLSIF and RULSIF: least-squares density-ratio fitting in closed form.

Both fit w(x) = sum_l theta_l k(x, c_l) to a (relative) density ratio by least squares
with ridge regularisation; the solution is one linear system, and the leave-one-out error
of every (width, regularisation) pair comes in closed form too, so model selection costs
little more than a single fit. uLSIF is the relative method with alpha = 0, and the two
classes share one implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh
from sklearn.utils import check_random_state

from ..errors import InputError, ParameterError
from ..registry import register
from ._base import BaseReweighting
from ._kernels import median_distance, sq_dists
from .kliep import _check_int, _check_sigmas, _nonzero_weights

__all__ = ["ULSIF", "RULSIF"]

#: default ridge parameters, 10 ** [-4, -3.5, ..., 1].
_DEFAULT_LAMBDAS = np.logspace(-4.0, 1.0, 11)
#: the leave-one-out criterion is computed on at most this many points per domain.
_MAX_LOO_SAMPLES = 2000


def _loo_scores(Ps: np.ndarray, Pt: np.ndarray, alpha: float, lambdas: np.ndarray
                ) -> np.ndarray:
    """Exact leave-one-out squared-loss criterion of (relative) uLSIF, one per lambda.

    ``Ps`` (n_s x b) and ``Pt`` (n_t x b) are kernel values of source and target points at
    the centres. Pair i = (source i, target i), for i < min(n_s, n_t), is held out in turn;
    the fit on the rest uses

        H_-i = (1-alpha)/(n_s-1) (Ps'Ps - ps ps') + alpha/(n_t-1) (Pt'Pt - pt pt'),
        h_-i = (Pt'1 - pt) / (n_t-1),   theta_-i = max(0, (H_-i + lambda I)^-1 h_-i),

    a rank-two downdate of one matrix, so the Woodbury identity gives every theta_-i at
    once (Kanamori et al., 2009, Sec. 3.4, extended to the relative ratio). The held-out
    pair scores alpha/2 w(pt)² + (1-alpha)/2 w(ps)² - w(pt), the empirical version of the
    squared error of the relative ratio up to a constant (Yamada et al., 2013).
    """
    n_s, n_t = Ps.shape[0], Pt.shape[0]
    n = min(n_s, n_t)
    a = (1.0 - alpha) / (n_s - 1)
    c = alpha / (n_t - 1)
    # Eigen-decomposition of the lambda-free part: each lambda is then a diagonal rescale.
    evals, V = eigh(a * (Ps.T @ Ps) + c * (Pt.T @ Pt))
    evals = np.maximum(evals, 0.0)
    Ys = V.T @ Ps[:n].T  # b x n, held-out source columns in eigen-coordinates
    Yt = V.T @ Pt[:n].T
    Yh = (V.T @ Pt.sum(axis=0))[:, None] - Yt  # (n_t-1) h_-i in eigen-coordinates
    Yh /= n_t - 1
    out = np.empty(len(lambdas))
    for k, lam in enumerate(lambdas):
        D = (1.0 / (evals + lam))[:, None]
        DYs, DYt = D * Ys, D * Yt
        Q = D * Yh  # (H + lambda I)^-1 h_-i before the downdate
        d_ss = np.einsum("ij,ij->j", Ys, DYs)
        d_st = np.einsum("ij,ij->j", Ys, DYt)
        d_tt = np.einsum("ij,ij->j", Yt, DYt)
        u = a * np.einsum("ij,ij->j", Ys, Q)
        v = c * np.einsum("ij,ij->j", Yt, Q)
        # Solve [[1 - a d_ss, -a d_st], [-c d_st, 1 - c d_tt]] [y1, y2] = [u, v].
        t11, t22 = 1.0 - a * d_ss, 1.0 - c * d_tt
        det = t11 * t22 - (a * c) * d_st**2
        y1 = (t22 * u + a * d_st * v) / det
        y2 = (c * d_st * u + t11 * v) / det
        theta = V @ (Q + DYs * y1 + DYt * y2)  # b x n, one column per held-out pair
        np.maximum(theta, 0.0, out=theta)
        ws = np.einsum("ij,ji->i", Ps[:n], theta)
        wt = np.einsum("ij,ji->i", Pt[:n], theta)
        out[k] = np.mean(0.5 * alpha * wt**2 + 0.5 * (1.0 - alpha) * ws**2 - wt)
    return out


def _fit_theta(Ks: np.ndarray, Kt: np.ndarray, alpha: float, lam: float) -> np.ndarray:
    """theta = max(0, (H + lambda I)^-1 h) on the full samples."""
    H = (1.0 - alpha) / Ks.shape[0] * (Ks.T @ Ks)
    if alpha > 0:
        H += alpha / Kt.shape[0] * (Kt.T @ Kt)
    H[np.diag_indices_from(H)] += lam
    theta = cho_solve(cho_factor(H, lower=True, check_finite=False), Kt.mean(axis=0),
                      check_finite=False)
    return np.maximum(theta, 0.0)


def _rulsif(Xs: np.ndarray, Xt: np.ndarray, alpha: float, sigmas: Any, lambdas: Any,
            n_centers: int, random_state: Any) -> dict[str, Any]:
    """Fit (relative) uLSIF with leave-one-out selection of the width and the ridge.

    Returns the centres, the chosen ``sigma`` and ``lambda``, the coefficients ``theta``,
    the LOO table and the source weights. Kernels are n x n_centers, never n x n.
    """
    rng = check_random_state(random_state)
    scale = (median_distance(Xs, Xt, random_state=rng.randint(2**31 - 1))
             if sigmas is None else 1.0)
    sigmas = _check_sigmas(sigmas, scale)
    lambdas = _DEFAULT_LAMBDAS if lambdas is None else np.atleast_1d(
        np.asarray(lambdas, dtype=np.float64)).ravel()
    if lambdas.size == 0 or not np.all(np.isfinite(lambdas)) or np.any(lambdas <= 0):
        raise ParameterError(
            f"lambdas must be positive finite ridge parameters (got {lambdas!r}); pass "
            "e.g. lambdas=[0.01, 0.1, 1], or None for a log grid."
        )
    n_s, n_t = Xs.shape[0], Xt.shape[0]
    C = Xt[np.sort(rng.choice(n_t, size=min(n_centers, n_t), replace=False))]
    Ds, Dt = sq_dists(Xs, C), sq_dists(Xt, C)

    loo: dict[tuple[float, float], float] = {}
    if sigmas.size * lambdas.size > 1:
        if min(n_s, n_t) < 2:
            raise InputError(
                "leave-one-out selection needs at least 2 samples per domain; pass a "
                "single sigma and lambda."
            )
        # Large samples: the criterion on a random subsample ranks the candidates as well.
        ls = rng.permutation(n_s)[:_MAX_LOO_SAMPLES]
        lt = rng.permutation(n_t)[:_MAX_LOO_SAMPLES]
        for sigma in sigmas:
            gamma = -0.5 / sigma**2
            scores = _loo_scores(np.exp(gamma * Ds[ls]), np.exp(gamma * Dt[lt]), alpha,
                                 lambdas)
            loo.update({(float(sigma), float(lam)): float(s)
                        for lam, s in zip(lambdas, scores)})
        sigma, lam = min(loo, key=loo.get)
    else:
        sigma, lam = float(sigmas[0]), float(lambdas[0])
    gamma = -0.5 / sigma**2
    Ks = np.exp(gamma * Ds)
    theta = _fit_theta(Ks, np.exp(gamma * Dt), alpha, lam)
    return {"centers": C, "sigma": sigma, "lambda": lam, "theta": theta, "loo": loo,
            "weights": _nonzero_weights(Ks @ theta, sigma)}


class _LSIFBase(BaseReweighting):
    """Shared fit / predict of ULSIF and RULSIF; subclasses give the relative alpha."""

    def _relative_alpha(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        res = _rulsif(Xs, Xt, self._relative_alpha(), self.sigmas, self.lambdas,
                      _check_int(self.n_centers, "n_centers", 1), self.random_state)
        self.centers_ = res["centers"]
        self.sigma_ = res["sigma"]
        self.lambda_ = res["lambda"]
        self.theta_ = res["theta"]
        self.loo_scores_ = res["loo"]
        return res["weights"]

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 / self.sigma_**2 * sq_dists(X, self.centers_)) @ self.theta_


_SHARED_PARAMS = """\
    estimator : estimator, torch.nn.Module or None, default=None
        Base learner fitted on the reweighted source: any scikit-learn estimator whose
        ``fit`` accepts ``sample_weight``, a ``torch.nn.Module`` (trained with a weighted
        loss), or None for logistic regression / ridge.
    sigmas : float, sequence of float or None, default=None
        Candidate Gaussian kernel widths. None uses the median pairwise distance of the
        pooled data times (0.125, 0.25, 0.5, 1, 2).
    lambdas : float, sequence of float or None, default=None
        Candidate ridge parameters. None uses 10 ** [-4, -3.5, ..., 1].
    n_centers : int, default=100
        Number of kernel centres, drawn at random from the target sample.
    random_state : int, RandomState instance or None, default=None
        Seeds the centres and the leave-one-out subsample (at most 2000 points per domain
        enter the criterion), and the base estimator when its ``random_state`` is unset."""

_SHARED_ATTRS = """\
    weights_ : ndarray of shape (n_source,)
        Estimated ratio at the source points, normalised to mean 1.
    sigma_ : float
        Selected kernel width.
    lambda_ : float
        Selected ridge parameter.
    theta_ : ndarray of shape (n_centers,)
        Non-negative kernel coefficients (clipped at 0, as in the papers).
    centers_ : ndarray of shape (n_centers, n_features)
        Kernel centres (target points).
    loo_scores_ : dict of (float, float) to float
        Leave-one-out criterion for each (sigma, lambda) candidate; lower is better (empty
        when a single candidate was given).
    estimator_ : estimator
        The base estimator fitted on the reweighted source (after ``fit``)."""


@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class ULSIF(_LSIFBase):
    """Unconstrained least-squares importance fitting (Kanamori, Hido & Sugiyama, 2009).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Under covariate shift the source risk weighted by w(x) = p_t(x) / p_s(x) equals the
    target risk. uLSIF fits the kernel model w(x) = sum_l theta_l k(x, c_l) (Gaussian
    kernels centred on target points) by minimising the squared error to the true ratio
    under p_s, which reduces to

        theta = max(0, (H + lambda I)^-1 h),  H = mean_s k(x_s) k(x_s)',  h = mean_t k(x_t).

    The width and ``lambda`` minimise the closed-form leave-one-out error.

    Parameters
    ----------
{params}

    Attributes
    ----------
{attrs}
    alpha_ : ndarray of shape (n_centers,)
        The coefficients in the paper's notation; the same array as ``theta_``.

    See Also
    --------
    RULSIF : the relative ratio, bounded by 1 / alpha and more stable.
    KLIEP : maximum-likelihood fitting of the same model.

    References
    ----------
    T. Kanamori, S. Hido, M. Sugiyama. "A least-squares approach to direct importance
    estimation", Journal of Machine Learning Research 10, 1391-1445, 2009.

    Examples
    --------
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.lsif import ULSIF
    >>> Xs, ys, Xt, yt = make_covariate_shift(n_source=500, n_target=500)
    >>> w = ULSIF(random_state=0).fit_weights(Xs, Xt)
    >>> w.shape, bool(w.min() >= 0)
    ((500,), True)
    """

    def __init__(self, estimator: Any = None, sigmas: Any = None, lambdas: Any = None,
                 n_centers: int = 100, random_state: Any = None) -> None:
        self.estimator = estimator
        self.sigmas = sigmas
        self.lambdas = lambdas
        self.n_centers = n_centers
        self.random_state = random_state

    def _relative_alpha(self) -> float:
        return 0.0

    @property
    def alpha_(self) -> np.ndarray:
        return self.theta_


@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class RULSIF(_LSIFBase):
    """Relative unconstrained least-squares importance fitting (Yamada et al., 2013).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Estimates the alpha-relative density ratio

        w_alpha(x) = p_t(x) / (alpha p_t(x) + (1 - alpha) p_s(x)),

    which is bounded by 1 / alpha (so a few source points cannot take all the weight) and
    is a monotone function of the ordinary ratio p_t / p_s: it ranks source points the
    same way, with large weights compressed. ``alpha = 0`` gives uLSIF. The kernel model
    w(x) = sum_l theta_l k(x, c_l) minimises the squared error to w_alpha under the mixture
    alpha p_t + (1 - alpha) p_s:

        theta = max(0, (H + lambda I)^-1 h),
        H = alpha mean_t k(x_t) k(x_t)' + (1 - alpha) mean_s k(x_s) k(x_s)',
        h = mean_t k(x_t).

    The width and ``lambda`` minimise the closed-form leave-one-out error.

    Parameters
    ----------
{params}
    alpha : float in [0, 1), default=0.1
        Relative parameter: the share of the target in the denominator mixture.

    Attributes
    ----------
{attrs}

    See Also
    --------
    ULSIF : the plain ratio (alpha = 0).

    References
    ----------
    M. Yamada, T. Suzuki, T. Kanamori, H. Hachiya, M. Sugiyama. "Relative density-ratio
    estimation for robust distribution comparison", Neural Computation 25(5), 1324-1370,
    2013.

    Examples
    --------
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.lsif import RULSIF
    >>> Xs, ys, Xt, yt = make_covariate_shift(n_source=500, n_target=500)
    >>> m = RULSIF(alpha=0.1, random_state=0).fit(Xs, ys, Xt)
    >>> m.weights_.shape, bool(m.theta_.min() >= 0)
    ((500,), True)
    """

    def __init__(self, estimator: Any = None, sigmas: Any = None, lambdas: Any = None,
                 n_centers: int = 100, alpha: float = 0.1, random_state: Any = None) -> None:
        self.estimator = estimator
        self.sigmas = sigmas
        self.lambdas = lambdas
        self.n_centers = n_centers
        self.alpha = alpha
        self.random_state = random_state

    def _relative_alpha(self) -> float:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float, np.number)) \
                or not 0.0 <= self.alpha < 1.0:
            raise ParameterError(
                f"alpha must be a number in [0, 1); got {self.alpha!r} (0 gives uLSIF).")
        return float(self.alpha)


for _cls in (ULSIF, RULSIF):
    _cls.__doc__ = _cls.__doc__.format(params=_SHARED_PARAMS, attrs=_SHARED_ATTRS)
