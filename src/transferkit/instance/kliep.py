"""KLIEP: density-ratio estimation by maximising the target likelihood of the ratio model."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ..errors import InputError, ParameterError
from ..registry import register
from ._base import BaseReweighting
from ._kernels import median_distance, sq_dists

__all__ = ["KLIEP"]

#: default widths, as multiples of the median pairwise distance of the pooled data.
_DEFAULT_SIGMA_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)
_TINY = np.finfo(np.float64).tiny


def _check_sigmas(sigmas: Any, default_scale: float) -> np.ndarray:
    if sigmas is None:
        return default_scale * np.asarray(_DEFAULT_SIGMA_FACTORS)
    arr = np.atleast_1d(np.asarray(sigmas, dtype=np.float64)).ravel()
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(
            f"sigmas must be positive finite kernel widths (got {sigmas!r}); pass e.g. "
            "sigmas=[0.1, 1, 10], or None for a grid around the median distance."
        )
    return arr


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)


def kliep_solve(A: np.ndarray, tol: float = 1e-6, max_iter: int = 100
                ) -> tuple[np.ndarray, int, float]:
    """Maximise ``mean(log(A @ beta))`` over the probability simplex.

    This is KLIEP's problem once each kernel column is divided by its source mean
    (``beta_l = alpha_l * mean_s K(x_s, c_l)``, so the constraint becomes ``sum(beta) = 1``).
    It is solved by sequential quadratic programming in the manner of mix-SQP (Kim et al.,
    2020): the equivalent problem ``min -mean(log(A x)) + sum(x)`` over ``x >= 0`` has its
    optimum on the simplex; each step solves the bound-constrained Newton QP exactly (as a
    non-negative least-squares problem), restricted to the support plus the coordinates
    that violate optimality, followed by an Armijo line search. Convergence is measured by
    the duality-gap bound ``max_l g_l - 1 >= f* - f(beta)``, where ``g = A.T (1 / A beta) / n``
    is the gradient on the simplex (``sum(beta * g) = 1``).

    Parameters
    ----------
    A : ndarray of shape (n, m)
        Non-negative, every row with a positive entry.
    tol : float
        Stop when the gap bound (in nats per row) is below ``tol``.
    max_iter : int

    Returns
    -------
    beta : ndarray of shape (m,)
        On the simplex.
    n_iter : int
    gap : float
        The final duality-gap bound.
    """
    n, m = A.shape
    # Row scaling leaves the maximiser unchanged and keeps A @ beta away from under/overflow.
    A = A / A.max(axis=1, keepdims=True)
    beta = np.full(m, 1.0 / m)
    r = A @ beta
    g = (1.0 / r) @ A / n
    gap = float(g.max() - 1.0)
    n_iter = 0
    while gap > tol and n_iter < max_iter:
        n_iter += 1
        W = np.flatnonzero((beta > 0) | (g > 1.0))
        AW = A[:, W] if W.size < m else A.copy()
        AW /= r[:, None]
        H = AW.T @ AW
        H /= n
        y = _nonneg_qp(H, 1.0 - 2.0 * g[W])  # Newton model; uses H @ beta_W = g_W
        p = y - beta[W]
        slope = float((1.0 - g[W]) @ p)
        if slope >= 0.0:  # no descent left at machine precision
            break
        F0 = 1.0 - float(np.mean(np.log(r)))
        t = 1.0
        while True:
            x = beta.copy()
            x[W] += t * p
            rx = A[:, W] @ x[W]
            with np.errstate(divide="ignore"):
                F = float(np.sum(x) - np.mean(np.log(rx)))
            if F <= F0 + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        if not np.isfinite(F):
            break
        # Rescaling onto the simplex is the exact minimiser of F along the ray.
        s = x.sum()
        beta, r = x / s, rx / s
        g = (1.0 / r) @ A / n
        if g.max() > 2.0:
            # Far from the optimum (a row almost unexplained) the Newton model is poor;
            # one monotone EM / multiplicative step rescales such coordinates at once.
            beta = beta * g
            r = A @ beta
            g = (1.0 / r) @ A / n
        gap = float(g.max() - 1.0)
    return beta, n_iter, gap


def _nonneg_qp(H: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin_{y >= 0} y'Hy/2 + c'y for a positive semi-definite H, via NNLS."""
    jitter = 1e-10 * float(np.mean(np.diag(H))) + 1e-300
    eye = np.eye(H.shape[0])
    for _ in range(6):
        try:
            L = cholesky(H + jitter * eye, lower=True, check_finite=False)
            break
        except LinAlgError:  # duplicated centres make H singular
            jitter *= 1e3
    else:  # pragma: no cover - H is PSD by construction
        raise LinAlgError("KLIEP's Newton system could not be factorised")
    # y'Hy/2 + c'y = |L'y - z|^2/2 + const with L z = -c.
    z = -solve_triangular(L, c, lower=True, check_finite=False)
    y, _ = nnls(L.T, z, maxiter=20 * H.shape[0])
    return y


def _nonzero_weights(w: np.ndarray, sigma: float) -> np.ndarray:
    """``w``, or a clear error when the width leaves every source point with weight 0."""
    if not np.any(w > 0):
        raise InputError(
            f"with kernel width sigma={sigma:g} no source point is close to any target "
            "kernel centre, so every weight is 0; use larger sigmas (or sigmas=None for a "
            "grid around the median distance), or check that the domains overlap."
        )
    return w


def _fit_alpha(Kt: np.ndarray, ks_mean: np.ndarray, tol: float, max_iter: int
               ) -> tuple[np.ndarray, int, float]:
    """KLIEP coefficients for target kernel rows ``Kt`` and source kernel means ``ks_mean``.

    Degenerate widths (no source or no target point within reach) give alpha = 0.
    """
    alpha = np.zeros(Kt.shape[1])
    # A centre that no source point reaches has an unbounded coefficient (the constraint
    # does not see it): leave it out, alpha_l = 0.
    cols = np.flatnonzero(ks_mean > 0)
    A = Kt[:, cols] / ks_mean[cols]
    # A target point that no centre reaches adds the same -inf for every alpha: drop it.
    A = A[A.max(axis=1, initial=0.0) > 0]
    if A.shape[0] == 0:
        return alpha, 0, 0.0
    beta, n_iter, gap = kliep_solve(A, tol=tol, max_iter=max_iter)
    alpha[cols] = beta / ks_mean[cols]
    return alpha, n_iter, gap


@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class KLIEP(BaseReweighting):
    """Kullback-Leibler importance estimation procedure (Sugiyama et al., 2008).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Under covariate shift (P(Y|X) shared, P(X) shifted) the source risk weighted by
    w(x) = p_t(x) / p_s(x) equals the target risk. KLIEP models the ratio as a non-negative
    combination of Gaussian kernels centred on target points,

        w(x) = sum_l alpha_l exp(-||x - c_l||² / (2 sigma²)),

    and chooses alpha >= 0 to maximise the target log-likelihood mean_t log w(x_t) of
    w p_s, subject to w p_s being a density on the source sample: mean_s w(x_s) = 1. The
    problem is concave; it is solved to a certified duality gap (``tol``) by sequential
    quadratic programming. The kernel width is chosen by likelihood cross-validation over
    target folds, as in the paper.

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        Base learner fitted on the reweighted source: any scikit-learn estimator whose
        ``fit`` accepts ``sample_weight``, a ``torch.nn.Module`` (trained with a weighted
        loss), or None for logistic regression / ridge.
    sigmas : float, sequence of float or None, default=None
        Candidate Gaussian kernel widths. None uses the median pairwise distance of the
        pooled source and target data times (0.125, 0.25, 0.5, 1, 2).
    n_centers : int, default=100
        Number of kernel centres, drawn at random from the target sample (all of them if
        the target is smaller).
    cv : int, default=5
        Folds of the likelihood cross-validation over the target sample: fit on ``cv - 1``
        folds (with the centres that lie in them), score the mean log-ratio of the held-out
        fold. Skipped when a single width is given.
    max_iter : int, default=100
        Maximum SQP iterations per fit (typically fewer than 15 are needed).
    tol : float, default=1e-6
        Stop when the bound on the gap to the optimal mean log-likelihood is below ``tol``.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of centres and folds (and the base estimator when it has an unset
        ``random_state``).

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        Estimated ratio at the source points, normalised to mean 1.
    sigma_ : float
        Selected kernel width.
    alpha_ : ndarray of shape (n_centers,)
        Non-negative kernel coefficients; ``mean_s sum_l alpha_l k(x_s, c_l) = 1``.
    centers_ : ndarray of shape (n_centers, n_features)
        Kernel centres (target points).
    cv_scores_ : dict of float to float
        Mean held-out target log-likelihood for each candidate width (empty when only one
        width was given).
    n_iter_ : int
        SQP iterations of the final fit.
    estimator_ : estimator
        The base estimator fitted on the reweighted source (after ``fit``).

    See Also
    --------
    ULSIF, RULSIF : least-squares density-ratio fitting with a closed-form solution.

    References
    ----------
    M. Sugiyama, S. Nakajima, H. Kashima, P. von Bünau, M. Kawanabe. "Direct importance
    estimation with model selection and its application to covariate shift adaptation",
    NeurIPS 2008.
    Y. Kim, P. Carbonetto, M. Stephens, M. Anitescu. "A fast algorithm for maximum
    likelihood estimation of mixture proportions using sequential quadratic programming",
    J. Comput. Graph. Stat. 29(2), 2020.

    Examples
    --------
    >>> from transferkit.datasets import make_two_moons_shift
    >>> from transferkit.instance.kliep import KLIEP
    >>> Xs, ys, Xt, yt = make_two_moons_shift()
    >>> model = KLIEP(sigmas=[0.1, 1, 10], random_state=0).fit(Xs, ys, Xt)
    >>> model.weights_.shape
    (100,)
    >>> model.sigma_ in (0.1, 1.0, 10.0)
    True
    """

    def __init__(self, estimator: Any = None, sigmas: Any = None, n_centers: int = 100,
                 cv: int = 5, max_iter: int = 100, tol: float = 1e-6,
                 random_state: Any = None) -> None:
        self.estimator = estimator
        self.sigmas = sigmas
        self.n_centers = n_centers
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        n_centers = _check_int(self.n_centers, "n_centers", 1)
        cv = _check_int(self.cv, "cv", 2)
        max_iter = _check_int(self.max_iter, "max_iter", 1)
        if not (isinstance(self.tol, (int, float, np.number)) and self.tol > 0):
            raise ParameterError(f"tol must be a positive number; got {self.tol!r}.")
        rng = check_random_state(self.random_state)
        scale = (median_distance(Xs, Xt, random_state=rng.randint(2**31 - 1))
                 if self.sigmas is None else 1.0)
        sigmas = _check_sigmas(self.sigmas, scale)

        n_t = Xt.shape[0]
        centers_idx = np.sort(rng.choice(n_t, size=min(n_centers, n_t), replace=False))
        C = Xt[centers_idx]
        Dt = sq_dists(Xt, C)  # n_target x n_centers; every width reuses it
        Ds = sq_dists(Xs, C)

        # Single-threaded BLAS: the solver's products are small, and threads only add
        # synchronisation cost (and thrash when the cores are shared).
        with threadpool_limits(limits=1, user_api="blas"):
            self.cv_scores_ = {}
            if sigmas.size > 1:
                if n_t < 2:
                    raise InputError(
                        "choosing the kernel width by cross-validation needs at least 2 "
                        "target samples; pass a single width, e.g. sigmas=1.0."
                    )
                folds = list(KFold(min(cv, n_t), shuffle=True,
                                   random_state=rng.randint(2**31 - 1)).split(Xt))
                for sigma in sigmas:
                    self.cv_scores_[float(sigma)] = self._cv_score(
                        Dt, Ds, centers_idx, float(sigma), folds, max_iter)
                best = max(self.cv_scores_, key=self.cv_scores_.get)
            else:
                best = float(sigmas[0])
            gamma = -0.5 / best**2
            Ks = np.exp(gamma * Ds)
            alpha, self.n_iter_, gap = _fit_alpha(np.exp(gamma * Dt), Ks.mean(axis=0),
                                                  self.tol, max_iter)
        if gap > self.tol:
            warnings.warn(
                f"KLIEP stopped after {self.n_iter_} iterations with a duality-gap bound of "
                f"{gap:.2g} > tol={self.tol:g}; increase max_iter.",
                ConvergenceWarning, stacklevel=3)
        self.sigma_ = best
        self.alpha_ = alpha
        self.centers_ = C
        return _nonzero_weights(Ks @ alpha, best)

    def _cv_score(self, Dt: np.ndarray, Ds: np.ndarray, centers_idx: np.ndarray,
                  sigma: float, folds: list, max_iter: int) -> float:
        """Mean held-out target log-likelihood of the ratio fitted on the other folds."""
        gamma = -0.5 / sigma**2
        Kt = np.exp(gamma * Dt)
        ks_mean = np.exp(gamma * Ds).mean(axis=0)
        in_train = np.zeros(Dt.shape[0], dtype=bool)
        scores = []
        for train, test in folds:
            in_train[:] = False
            in_train[train] = True
            # Centres must come from the training folds, or held-out points that are
            # centres would score themselves and favour ever smaller widths.
            cols = np.flatnonzero(in_train[centers_idx])
            if cols.size == 0:
                return -np.inf
            alpha, _, _ = _fit_alpha(Kt[np.ix_(train, cols)], ks_mean[cols], self.tol,
                                     max_iter)
            r = Kt[np.ix_(test, cols)] @ alpha
            scores.append(float(np.mean(np.log(np.maximum(r, _TINY)))))
        return float(np.mean(scores))

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 / self.sigma_**2 * sq_dists(X, self.centers_)) @ self.alpha_
