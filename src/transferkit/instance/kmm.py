"""KMM: kernel mean matching, solved by accelerated projected gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from ..errors import ParameterError
from ..registry import register
from ._base import BaseReweighting
from ._kernels import median_distance, sq_dists

__all__ = ["KMM", "project_box_slab", "solve_box_slab_qp"]

_BLOCK = 1024  # rows per kernel block: bounds the temporary memory to _BLOCK x n


# --------------------------------------------------------------------------- kernels
def _augmented(X: np.ndarray, Y: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """A, C with ``A @ C.T = -||x - y||² / (2σ²)``: one GEMM gives a whole exponent block."""
    g = 1.0 / (2.0 * sigma**2)
    A = np.hstack([2.0 * g * X, -g * np.einsum("ij,ij->i", X, X)[:, None],
                   np.ones((len(X), 1))])
    C = np.hstack([Y, np.ones((len(Y), 1)), -g * np.einsum("ij,ij->i", Y, Y)[:, None]])
    return A.astype(np.float32), C.astype(np.float32)


def _kernel_f32(X: np.ndarray, Y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian kernel matrix in float32, built block by block in place.

    float32 halves the memory and the time of every matrix-vector product; its rounding
    (~1e-7) is far below the statistical error of the weights.
    """
    A, C = _augmented(X, Y, sigma)
    K = np.empty((len(X), len(Y)), dtype=np.float32)
    for s in range(0, len(X), _BLOCK):
        blk = K[s:s + _BLOCK]
        np.matmul(A[s:s + _BLOCK], C.T, out=blk)
        np.minimum(blk, 0.0, out=blk)  # rounding can make a zero distance slightly negative
        np.exp(blk, out=blk)
    return K


def _kernel_row_sums(X: np.ndarray, Y: np.ndarray, sigma: float) -> np.ndarray:
    """``K(X, Y) @ 1`` without storing K(X, Y)."""
    A, C = _augmented(X, Y, sigma)
    out = np.empty(len(X))
    for s in range(0, len(X), _BLOCK):
        blk = A[s:s + _BLOCK] @ C.T
        np.minimum(blk, 0.0, out=blk)
        np.exp(blk, out=blk)
        out[s:s + _BLOCK] = blk.sum(axis=1, dtype=np.float64)
    return out


def _nystrom_features(X: np.ndarray, landmarks: np.ndarray, sigma: float,
                      proj: np.ndarray, sum_rows: bool = False) -> np.ndarray:
    """Φ(X) = K(X, landmarks) U Λ^{-1/2}, so that Φ(X) Φ(Y)ᵀ ≈ K(X, Y).

    With ``sum_rows`` only ``Φ(X)ᵀ 1`` is returned, accumulated block by block.
    """
    out = np.zeros(proj.shape[1]) if sum_rows else np.empty((len(X), proj.shape[1]))
    g = -1.0 / (2.0 * sigma**2)
    for s in range(0, len(X), _BLOCK):
        Kb = sq_dists(X[s:s + _BLOCK], landmarks)
        Kb *= g
        np.exp(Kb, out=Kb)
        if sum_rows:
            out += Kb.sum(axis=0) @ proj
        else:
            out[s:s + _BLOCK] = Kb @ proj
    return out


# --------------------------------------------------------------------------- solver
def project_box_slab(v: np.ndarray, B: float, lower: float, upper: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto ``{0 <= x <= B, lower <= sum(x) <= upper}``.

    If clipping to the box already satisfies the sum constraint that is the answer;
    otherwise the projection is ``clip(v - τ, 0, B)`` with the scalar τ that puts the sum
    on the violated side (KKT conditions of the projection). ``s(τ) = Σ clip(v_i - τ, 0, B)``
    is piecewise linear and non-increasing with breakpoints ``v_i`` and ``v_i - B``; it is
    evaluated at all breakpoints at once from sorted prefix sums, and τ is found exactly by
    linear interpolation on the crossing segment (O(n log n), no iteration).

    Parameters
    ----------
    v : ndarray of shape (n,)
    B : float
        Upper bound of every coordinate (> 0).
    lower, upper : float
        Bounds on the sum, with ``0 <= lower <= upper`` and ``lower <= n * B``.

    Returns
    -------
    x : ndarray of shape (n,)
    """
    x = np.clip(v, 0.0, B)
    s = x.sum()
    if lower <= s <= upper:
        return x
    target = lower if s < lower else upper
    n = v.shape[0]
    a = np.sort(v)
    suffix = np.concatenate([np.cumsum(a[::-1])[::-1], [0.0]])  # suffix[k] = sum(a[k:])
    taus = np.sort(np.concatenate([a, a - B]))

    def total(t: np.ndarray) -> np.ndarray:
        # Σ_{v_i > t} (v_i - t)  -  Σ_{v_i - B > t} (v_i - B - t)
        k1 = np.searchsorted(a, t, side="right")
        k2 = np.searchsorted(a, t + B, side="right")
        c1, c2 = n - k1, n - k2
        return (suffix[k1] - c1 * t) - (suffix[k2] - c2 * B - c2 * t)

    sv = total(taus)  # non-increasing in taus
    k = int(np.searchsorted(-sv, -target, side="right")) - 1
    k = min(max(k, 0), len(taus) - 2)
    t0, t1, s0, s1 = taus[k], taus[k + 1], sv[k], sv[k + 1]
    tau = t0 if s0 == s1 else t0 + (target - s0) * (t1 - t0) / (s1 - s0)
    return np.clip(v - tau, 0.0, B)


def solve_box_slab_qp(matvec, kappa: np.ndarray, lipschitz: float, B: float, lower: float,
                      upper: float, max_iter: int = 1000, tol: float = 1e-5,
                      x0: np.ndarray | None = None) -> tuple[np.ndarray, float, int, bool]:
    """Minimise ``½ xᵀQx - κᵀx`` over ``{0 <= x <= B, lower <= Σx <= upper}``.

    FISTA (Beck & Teboulle, 2009) with exact projections (:func:`project_box_slab`),
    step ``1 / lipschitz`` and the gradient adaptive restart of O'Donoghue & Candès
    (2015), which removes the oscillations of plain FISTA and gives linear convergence on
    well-conditioned problems. One product with Q per iteration: ``Q y`` at the
    extrapolated point is the same combination of ``Q x_k`` and ``Q x_{k-1}`` as ``y``.
    A step that raises the objective beyond rounding (relative 1e-6, so that a float32 Q
    is safe) is rejected: with momentum the momentum is reset, without it the step was
    too long (an under-estimated Lipschitz constant) and the constant is doubled.

    Parameters
    ----------
    matvec : callable
        ``x -> Q @ x`` for a symmetric positive semi-definite Q.
    kappa : ndarray of shape (n,)
    lipschitz : float
        An estimate of λ_max(Q).
    B, lower, upper : float
        The feasible set, as in :func:`project_box_slab`.
    max_iter : int
    tol : float
        Stop when ``||x_{k+1} - x_k|| <= tol * max(||x_{k+1}||, 1)``.
    x0 : ndarray, optional
        Starting point (projected); default all ones.

    Returns
    -------
    x : ndarray of shape (n,)
    objective : float
    n_iter : int
    converged : bool
    """
    n = kappa.shape[0]
    L = float(lipschitz)
    x = project_box_slab(np.ones(n) if x0 is None else np.asarray(x0, dtype=np.float64),
                         B, lower, upper)
    Qx = matvec(x)
    f = 0.5 * x @ Qx - kappa @ x
    y, Qy, t = x, Qx, 1.0
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        x_new = project_box_slab(y - (Qy - kappa) / L, B, lower, upper)
        Qx_new = matvec(x_new)
        f_new = 0.5 * x_new @ Qx_new - kappa @ x_new
        if f_new > f + 1e-6 * max(abs(f), 1.0):
            if t == 1.0:  # no momentum and still uphill: the step was too long
                L *= 2.0
            y, Qy, t = x, Qx, 1.0  # reject the step; restart from the last iterate
            continue
        step = x_new - x
        if (y - x_new) @ step > 0:  # momentum points uphill: restart it
            t = 1.0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        mom = (t - 1.0) / t_new
        y = x_new + mom * step
        Qy = Qx_new + mom * (Qx_new - Qx)
        x, Qx, f, t = x_new, Qx_new, f_new, t_new
        if np.linalg.norm(step) <= tol * max(np.linalg.norm(x), 1.0):
            converged = True
            break
    return x, float(f), n_iter, converged


def _power_lambda_max(matvec, n: int, n_iter: int = 30, rtol: float = 1e-4) -> float:
    """Largest eigenvalue of a PSD matrix with non-negative entries by power iteration.

    Started from the all-ones vector, which is close to the positive Perron eigenvector
    of a Gaussian kernel matrix, so a few iterations suffice.
    """
    v = np.full(n, 1.0 / np.sqrt(n))
    lam = 0.0
    for _ in range(n_iter):
        w = matvec(v)
        lam_new = float(np.linalg.norm(w))
        if lam_new == 0.0:
            return 0.0
        v = w / lam_new
        if abs(lam_new - lam) <= rtol * lam_new:
            return lam_new
        lam = lam_new
    return lam


# --------------------------------------------------------------------------- estimator
@register(family="instance", settings=("unsupervised", "semi-supervised"), backend="sklearn")
class KMM(BaseReweighting):
    """Kernel mean matching (Huang et al., 2007).

    Setting: unsupervised domain adaptation under covariate shift (the labelling rule
    P(y|x) is shared, only P(x) moves); target labels are not needed.

    Reweights the source sample so that its mean in a Gaussian RKHS matches the target
    mean, under covariate shift (P(Y|X) shared, P(X) shifted). The weights β solve the
    quadratic programme of Huang, Smola, Gretton, Borgwardt and Schölkopf (2007)

        minimise   ½ βᵀKβ − κᵀβ + ½ λ ||β||²
        subject to 0 <= β_i <= B,   |Σ β_i − n_s| <= n_s ε,

    with ``K_ij = k(x_i, x_j)`` on the source, ``κ_i = (n_s/n_t) Σ_j k(x_i, x'_j)`` against
    the target and λ = ``reg`` · n_s. The ridge term is our addition (``reg=0`` is the
    paper's programme): without it the optimum is ill-posed in moderate dimension (many
    nearly optimal, very different β) and tends to sparse, noisy weights, e.g. a Spearman
    correlation with the true ratio of about 0.4 instead of 0.9 in ten dimensions with
    2 000 points per domain; it also bounds the condition number, so the solver converges
    in a few hundred iterations. Both constraints are honoured exactly: the solver is
    accelerated projected gradient (FISTA with adaptive restart) whose every iterate is
    the exact Euclidean projection onto the box ∩ slab.

    Up to ``max_exact`` source points the full n_s × n_s kernel is used (float32); above
    it K ≈ ΦΦᵀ with ``n_components`` Nyström landmarks drawn from the pooled sample, κ is
    computed from the same features and every product costs O(n_s · n_components), so no
    n × n matrix is ever formed.

    Parameters
    ----------
    estimator : estimator or torch.nn.Module, default=None
        Base learner fitted on the reweighted source; None gives logistic regression
        (classification) or ridge (regression).
    sigma : float, default=None
        Width of the Gaussian kernel ``exp(-||x - y||² / (2 σ²))``; None uses the median
        pairwise distance of the pooled source and target samples (median heuristic).
    B : float, default=1000.0
        Upper bound on each weight (the paper's B).
    eps : float, default=None
        Tolerance of the sum constraint; None uses ε = (√n_s − 1)/√n_s, the value of
        Huang et al. (2007).
    reg : float, default=1e-3
        Ridge strength relative to n_s (λ = reg · n_s); 0 gives the original KMM.
    max_iter : int, default=1000
        Maximum number of solver iterations (a few hundred are typical).
    tol : float, default=1e-6
        Relative change of β below which the solver stops (the float32 kernel limits the
        attainable accuracy to about 1e-7).
    max_exact : int, default=10000
        Largest source sample solved with the exact kernel matrix.
    n_components : int, default=500
        Nyström landmarks used above ``max_exact``.
    random_state : int, RandomState or None, default=None
        Seeds the median-heuristic subsample, the Nyström landmarks and the base learner.

    Attributes
    ----------
    beta_ : ndarray of shape (n_source,)
        The solution of the programme (honours ``B`` and the sum constraint).
    weights_ : ndarray of shape (n_source,)
        ``beta_`` divided by its mean (the scale used by ``fit``), so it may exceed B.
    sigma_ : float
        Kernel width used.
    eps_ : float
        Sum tolerance used.
    lambda_ : float
        Ridge strength used, ``reg * n_source``.
    B_ : float
        Bound used.
    objective_ : float
        Final value of ½ βᵀKβ − κᵀβ + ½ λ ||β||² (with the Nyström K when it was used).
    n_iter_ : int
        Solver iterations.
    converged_ : bool
        Whether the solver met ``tol`` before ``max_iter``.
    nystrom_ : bool
        Whether the low-rank path was taken.
    centres_ : ndarray of shape (n_centres, n_features)
        Kernel centres of the out-of-sample extension: source and target samples (exact
        path), the Nyström landmarks, or the source sample when ``reg=0``.
    dual_coef_ : ndarray of shape (n_centres,)
        Coefficients of the extension on ``centres_``.
    intercept_ : float
        Constant of the extension (the sum-constraint multiplier over -λ).
    estimator_ : estimator
        The fitted base learner (after ``fit``).

    Notes
    -----
    KMM defines weights on the source sample only. ``predict_weights(X)`` extends them
    through the optimality conditions of the ridge programme: each β_i strictly inside
    the box equals ``(κ_i − (Kβ)_i − ν)/λ`` (ν: multiplier of the sum constraint), and
    the right-hand side, the scaled witness function of the mean discrepancy, is defined
    everywhere, so

        w(x) = clip((n_s/n_t Σ_j k(x, x'_j) − Σ_i β_i k(x, x_i) − ν) / λ, 0, B),

    computed in blocks (with the Nyström features on the low-rank path). It reproduces β
    at the source points up to the solver tolerance and falls to 0 far from the target.
    With ``reg=0`` (λ = 0) it is undefined, and β is interpolated instead by
    Nadaraya–Watson smoothing ``Σ_i k(x, x_i) β_i / Σ_i k(x, x_i)``.

    References
    ----------
    Huang, J., Smola, A. J., Gretton, A., Borgwardt, K. M. and Schölkopf, B. (2007).
    Correcting sample selection bias by unlabeled data. NIPS 19, 601–608.

    Beck, A. and Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm
    for linear inverse problems. SIAM J. Imaging Sciences 2(1), 183–202.

    Examples
    --------
    >>> from transferkit.datasets import make_covariate_shift
    >>> from transferkit.instance.kmm import KMM
    >>> Xs, ys, Xt, yt = make_covariate_shift(n_source=300, n_target=300, random_state=0)
    >>> model = KMM(random_state=0).fit(Xs, ys, Xt)
    >>> model.weights_.shape
    (300,)
    >>> bool(model.beta_.max() <= model.B)
    True
    """

    def __init__(self, estimator: Any = None, sigma: float | None = None, B: float = 1000.0,
                 eps: float | None = None, reg: float = 1e-3, max_iter: int = 1000,
                 tol: float = 1e-6, max_exact: int = 10000, n_components: int = 500,
                 random_state: Any = None):
        self.estimator = estimator
        self.sigma = sigma
        self.B = B
        self.eps = eps
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol
        self.max_exact = max_exact
        self.n_components = n_components
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_source: int) -> tuple[float, float, float]:
        B = float(self.B)
        if not np.isfinite(B) or B <= 0:
            raise ParameterError(f"B must be a positive number; got {self.B!r}.")
        eps = (np.sqrt(n_source) - 1.0) / np.sqrt(n_source) if self.eps is None \
            else float(self.eps)
        if not np.isfinite(eps) or eps < 0:
            raise ParameterError(f"eps must be a non-negative number or None; got {self.eps!r}.")
        if B < 1.0 - eps:
            raise ParameterError(
                f"the constraints are infeasible: the weights must sum to at least "
                f"n_source * (1 - eps) = {n_source * (1 - eps):.4g} but B = {B:g} allows at "
                f"most {n_source * B:.4g}; raise B or eps."
            )
        reg = float(self.reg)
        if not np.isfinite(reg) or reg < 0:
            raise ParameterError(f"reg must be a non-negative number; got {self.reg!r}.")
        for name in ("max_iter", "max_exact", "n_components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name} must be a positive integer; got {value!r}.")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ParameterError(f"tol must be a positive number; got {self.tol!r}.")
        if self.sigma is not None and not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ParameterError(f"sigma must be a positive number or None; got {self.sigma!r}.")
        return B, eps, reg

    # ------------------------------------------------------------------ hooks
    def _fit_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        ns, nt = len(Xs), len(Xt)
        B, eps, reg = self._check_params(ns)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        sigma = float(self.sigma) if self.sigma is not None else median_distance(
            Xs, Xt, random_state=seed)
        lam = reg * ns
        if ns <= self.max_exact:
            K = _kernel_f32(Xs, Xs, sigma)
            kappa = (ns / nt) * _kernel_row_sums(Xs, Xt, sigma)

            def matvec(b: np.ndarray) -> np.ndarray:
                return (K @ b.astype(np.float32)).astype(np.float64) + lam * b

            # Small safety margin: power iteration approaches λ_max from below.
            lipschitz = 1.02 * _power_lambda_max(matvec, ns)
            self.nystrom_ = False
        else:
            pooled = np.vstack([Xs, Xt])
            m = min(int(self.n_components), len(pooled))
            landmarks = pooled[rng.choice(len(pooled), m, replace=False)]
            Kmm = np.exp(-sq_dists(landmarks, landmarks) / (2.0 * sigma**2))
            evals, evecs = np.linalg.eigh(Kmm)
            keep = evals > 1e-10 * evals[-1]  # drop the numerically null directions
            proj = evecs[:, keep] / np.sqrt(evals[keep])
            Phi_s = _nystrom_features(Xs, landmarks, sigma, proj)
            phi_t_sum = _nystrom_features(Xt, landmarks, sigma, proj, sum_rows=True)
            kappa = (ns / nt) * (Phi_s @ phi_t_sum)

            def matvec(b: np.ndarray) -> np.ndarray:
                return Phi_s @ (Phi_s.T @ b) + lam * b

            # λ_max(ΦΦᵀ) = λ_max(ΦᵀΦ), an m x m matrix: exact and cheap.
            lipschitz = float(np.linalg.eigvalsh(Phi_s.T @ Phi_s)[-1]) + lam
            self.nystrom_ = True
        lower, upper = max(ns * (1.0 - eps), 0.0), ns * (1.0 + eps)
        beta, obj, n_iter, converged = solve_box_slab_qp(
            matvec, kappa, lipschitz, B, lower, upper, max_iter=int(self.max_iter),
            tol=float(self.tol))
        self.sigma_ = sigma
        self.eps_ = eps
        self.lambda_ = lam
        self.B_ = B
        self.beta_ = beta
        self.objective_ = obj
        self.n_iter_ = n_iter
        self.converged_ = converged
        if lam > 0:
            # Stationarity of the ridge programme: every β_i strictly inside the box
            # satisfies λ β_i = κ_i - (Kβ)_i - ν (ν: multiplier of the sum constraint, 0
            # when it is slack). The right side is defined at any x, which gives the
            # out-of-sample extension ``clip((κ(x) - (Kβ)(x) - ν) / λ, 0, B)``.
            resid = kappa - matvec(beta)
            inside = (beta > 0) & (beta < B)
            s = beta.sum()
            active = min(s - lower, upper - s) <= 1e-9 * ns
            nu = float(np.median(resid[inside])) if active and inside.any() else 0.0
            if self.nystrom_:
                # Φ(x) = K(x, landmarks) proj, so the extension is a kernel expansion
                # over the landmarks alone.
                self.centres_ = landmarks
                self.dual_coef_ = proj @ ((ns / nt) * phi_t_sum - Phi_s.T @ beta) / lam
            else:
                self.centres_ = np.vstack([Xs, Xt])
                self.dual_coef_ = np.concatenate([-beta, np.full(nt, ns / nt)]) / lam
            self.intercept_ = -nu / lam
        else:
            self.centres_ = Xs.copy()
            self.dual_coef_ = beta
            self.intercept_ = 0.0
        return beta

    def _predict_weights(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        g = -1.0 / (2.0 * self.sigma_**2)
        for s in range(0, len(X), _BLOCK):
            E = sq_dists(X[s:s + _BLOCK], self.centres_)
            E *= g
            if self.lambda_ > 0:
                np.exp(E, out=E)
                out[s:s + _BLOCK] = E @ self.dual_coef_ + self.intercept_
            else:
                # Nadaraya–Watson; subtracting each row's largest exponent keeps far-away
                # points finite (they inherit the weight of their nearest source points).
                E -= E.max(axis=1, keepdims=True)
                np.exp(E, out=E)
                out[s:s + _BLOCK] = (E @ self.dual_coef_) / E.sum(axis=1)
        return np.clip(out, 0.0, self.B_)
