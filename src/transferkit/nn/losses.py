"""Divergences between source and target features, as differentiable torch losses.

Deep adaptation methods add one of these, computed on the encoder features of a
minibatch, to the supervised loss; diagnostics can call them on any two feature
matrices. Every function takes ``zs`` of shape (n_s, d) and ``zt`` of shape (n_t, d)
(extra trailing dimensions are flattened) and returns a scalar tensor through which
gradients flow to both inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

__all__ = ["coral_loss", "coral_loss_pooled", "covariance", "mmd_loss", "mmd_loss_pooled",
           "mmd_kernel_spec", "linear_mmd_loss", "gaussian_kernel",
           "median_bandwidth", "kernel_bandwidths", "entropy_loss", "domain_bce_loss"]


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(z.shape[0], -1)


def _check_pair(zs: torch.Tensor, zt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    zs, zt = _flat(zs), _flat(zt)
    if zs.shape[1] != zt.shape[1]:
        raise ValueError(f"source and target features differ in width: {zs.shape[1]} vs "
                         f"{zt.shape[1]}.")
    return zs, zt


# --------------------------------------------------------------------------- CORAL
def covariance(z: torch.Tensor) -> torch.Tensor:
    """Unbiased feature covariance (d, d) of the rows of ``z``.

    C = (Zᵀ Z − (1ᵀ Z)ᵀ (1ᵀ Z) / n) / (n − 1), as in Sun & Saenko (2016); a single row
    gives the zero matrix.
    """
    z = _flat(z)
    n = z.shape[0]
    zc = z - z.mean(0, keepdim=True)
    return zc.T @ zc / max(n - 1, 1)


class _CoralPooled(torch.autograd.Function):
    """ℓ_CORAL of the rows ``z[:n]`` vs ``z[n:]`` with its closed-form gradient.

    With centred blocks c_S, c_T and D = C_S − C_T, ∂ℓ/∂z_S = c_S D / (d²(n_S − 1)) and
    ∂ℓ/∂z_T = −c_T D / (d²(n_T − 1)) (the centring projection leaves c D unchanged, its
    columns already sum to zero). One backward node instead of a dozen: on the small
    networks deep adaptation trains, per-op overhead costs more than the arithmetic.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, n: int) -> torch.Tensor:
        zs, zt = z[:n], z[n:]
        ns, nt, d = zs.shape[0], zt.shape[0], z.shape[1]
        cs, ct = zs - zs.mean(0), zt - zt.mean(0)
        a, b = 1.0 / max(ns - 1, 1), 1.0 / max(nt - 1, 1)
        diff = torch.addmm(cs.T @ cs, ct.T, ct, beta=a, alpha=-b)
        ctx.save_for_backward(cs, ct, diff)
        ctx.scales = (a / (d * d), -b / (d * d))
        flat = diff.reshape(-1)
        return torch.dot(flat, flat) / (4.0 * d * d)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        cs, ct, diff = ctx.saved_tensors
        a, b = ctx.scales
        out = torch.cat([cs @ diff * a, ct @ diff * b])
        return out * grad, None


def coral_loss_pooled(z: torch.Tensor, n_source: int) -> torch.Tensor:
    """:func:`coral_loss` of ``z[:n_source]`` vs ``z[n_source:]`` (one pooled matrix,
    as an encoder pass over both domains returns it)."""
    z = _flat(z)
    if not 0 < n_source < z.shape[0]:
        raise ValueError(f"n_source must split the {z.shape[0]} rows; got {n_source}.")
    return _CoralPooled.apply(z, int(n_source))


def coral_loss(zs: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
    """Deep CORAL loss: squared Frobenius distance of the feature covariances.

    ℓ_CORAL = ‖C_S − C_T‖²_F / (4 d²)

    where C_S, C_T are the unbiased (n−1) covariances of the d-dimensional source and
    target features (Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain
    Adaptation", ECCV workshops 2016, eq. 1). The loss ignores the means, aligning
    second-order statistics only.
    """
    zs, zt = _check_pair(zs, zt)
    return coral_loss_pooled(torch.cat([zs, zt]), zs.shape[0])


# --------------------------------------------------------------------------- MMD
# Gaussian kernels go through exp2: e^(−D/γ) = 2^(−D·log₂e/γ). Torch's CPU exp2 is twice as
# fast as exp and keeps its speed where the result is subnormal or zero, where exp takes a
# path 40-60× slower (measured on a (5, 68, 68) batch kernel: 27 µs vs 1.1-1.8 ms); far
# pairs are common in a learned feature space, and exp2 needs no floor on the exponent.
_LOG2E = 1.0 / math.log(2.0)
_4LN2 = 4.0 * math.log(2.0)


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # ‖a‖² + ‖b‖² − 2ab, clamped: exact enough for features and much cheaper than cdist
    # for the small batches deep adaptation uses.
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min_(0.0)


def _off_diagonal(d: torch.Tensor) -> torch.Tensor:
    """The n(n−1) off-diagonal entries of a square matrix, as a view (no mask, no copy)."""
    n = d.shape[0]
    return d.reshape(-1)[1:].reshape(n - 1, n + 1)[:, :-1]


def median_bandwidth(z: torch.Tensor) -> torch.Tensor:
    """Median of the pairwise squared distances between distinct rows of ``z`` (detached).

    The usual data-driven scale of a Gaussian kernel exp(−‖x−y‖² / γ); 1 when all rows
    coincide.
    """
    z = _flat(z).detach()
    return torch.as_tensor(_median_of(_sq_dists(z, z)), dtype=z.dtype, device=z.device)


# The kernel centre of a batch: a Python float on the CPU, where reading it is free and
# spares the kernels that a tensor's guard against 0 costs; a tensor elsewhere, so that
# a GPU never waits on the host.
def _median_of(d: torch.Tensor) -> torch.Tensor | float:
    d = d.detach()
    if d.shape[0] < 2:
        return 1.0
    med = _off_diagonal(d).median()
    if med.device.type == "cpu":
        return float(med) or 1.0  # 1 when most rows coincide
    return torch.where(med > 0, med, 1.0)


def kernel_bandwidths(base: torch.Tensor | float, kernel_mul: float = 2.0,
                      kernel_num: int = 5) -> torch.Tensor:
    """γ_i = base · kernel_mul^(i − kernel_num // 2), i = 0 … kernel_num − 1.

    A geometric family centred on ``base`` (the multi-kernel of Long et al. 2015).
    """
    if kernel_num < 1:
        raise ValueError("kernel_num must be at least 1.")
    base = torch.as_tensor(base, dtype=torch.float32)
    powers = torch.arange(kernel_num, dtype=base.dtype, device=base.device) - kernel_num // 2
    return base * float(kernel_mul) ** powers


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidths: torch.Tensor) -> torch.Tensor:
    """Σ_i exp(−‖a − b‖² / γ_i): the multi-kernel Gram matrix (n_a, n_b)."""
    d = _sq_dists(_flat(a), _flat(b))
    bw = torch.as_tensor(bandwidths, dtype=d.dtype, device=d.device).reshape(-1, 1, 1)
    return torch.exp2(d[None] * (-_LOG2E / bw)).sum(0)


def _mean_of(d: torch.Tensor) -> torch.Tensor | float:
    """Mean squared distance between distinct rows (the diagonal is zero), detached."""
    n = d.shape[0]
    total = d.detach().sum()
    if total.device.type == "cpu":
        return float(total) / max(n * (n - 1), 1) or 1.0
    return torch.where(total > 0, total / max(n * (n - 1), 1), 1.0)


def _centre_value(d: torch.Tensor | None, centre: str | float) -> torch.Tensor | float:
    if centre == "mean":
        return _mean_of(d)
    return _median_of(d) if centre == "median" else centre


_MULTIPLIERS: dict = {}


def _neg_inv_multipliers(kernel_mul: float, kernel_num: int, dtype, device) -> torch.Tensor:
    """−1 / kernel_mul^(i − kernel_num // 2), shaped (k, 1, 1), cached: rebuilt every step
    it costs several kernel launches."""
    key = (kernel_mul, kernel_num, dtype, device)
    if key not in _MULTIPLIERS:
        m = kernel_bandwidths(1.0, kernel_mul, kernel_num).to(device, dtype)
        _MULTIPLIERS[key] = (-1.0 / m).reshape(-1, 1, 1)
    return _MULTIPLIERS[key]


def mmd_loss(zs: torch.Tensor, zt: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5,
             bandwidth: float | Sequence[float] | torch.Tensor | None = None, *,
             estimator: str = "unbiased") -> torch.Tensor:
    """Multi-kernel maximum mean discrepancy MMD²_k between source and target features.

    With k(x, y) = Σ_i exp(−‖x − y‖² / γ_i) (Long et al., "Learning Transferable
    Features with Deep Adaptation Networks", ICML 2015) and the kernel mean embeddings
    of P_s and P_t,

        MMD²_k = E k(x_s, x_s') + E k(x_t, x_t') − 2 E k(x_s, x_t).

    ``estimator="unbiased"`` (default) is the U-statistic of Gretton et al. (2012):

        1/(m(m−1)) Σ_{i≠j} k(s_i, s_j) + 1/(n(n−1)) Σ_{i≠j} k(t_i, t_j) − 2/(mn) Σ_{i,j} k(s_i, t_j)

    (it may be slightly negative); ``"biased"`` keeps the diagonals (the V-statistic,
    always ≥ 0); ``"linear"`` is the linear-time estimate of DAN (Long et al. 2015,
    eq. 5) over the quad-tuples of the first n' = min(m, n) rows (n' even),

        2/n' Σ_{i ≤ n'/2} [k(s_{2i−1}, s_{2i}) + k(t_{2i−1}, t_{2i})
                            − k(s_{2i−1}, t_{2i}) − k(s_{2i}, t_{2i−1})].

    Parameters
    ----------
    zs, zt : Tensor of shape (m, d), (n, d)
    kernel_mul : float, default=2.0
        Ratio between consecutive bandwidths.
    kernel_num : int, default=5
        Number of Gaussian kernels.
    bandwidth : float, sequence of float, "median", "mean" or None
        ``None`` or ``"median"``: the kernels are centred on the median pairwise squared
        distance of the pooled batch (detached, so no gradient flows through the scale);
        ``"mean"``: on the mean one (cheaper, as in DAN's reference code); a float: that
        centre γ; a sequence: the bandwidths γ_i themselves (``kernel_mul`` and
        ``kernel_num`` are then ignored).
    estimator : {"unbiased", "biased", "linear"}
    """
    zs, zt = _check_pair(zs, zt)
    m = zs.shape[0]
    if estimator == "linear":
        neg_mult, centre = mmd_kernel_spec(kernel_mul, kernel_num, bandwidth, zs.dtype,
                                           zs.device)
        d = None
        if isinstance(centre, str):  # a data-driven centre reads the pooled distances
            pooled = torch.cat([zs, zt]).detach()
            d = _sq_dists(pooled, pooled)
        return _linear_mmd(zs, zt, -_centre_value(d, centre) / neg_mult.reshape(-1))
    if estimator not in ("unbiased", "biased"):
        raise ValueError(f"estimator must be 'unbiased', 'biased' or 'linear'; got "
                         f"{estimator!r}.")
    return mmd_loss_pooled(torch.cat([zs, zt]), m, kernel_mul, kernel_num, bandwidth,
                           estimator=estimator)


class _MMDPooled(torch.autograd.Function):
    """Σ W∘K over the pooled rows with its closed-form gradient.

    K_ij = Σ_b exp(−D_ij/γ_b), D_ij = ‖z_i − z_j‖²; with G = ∂L/∂D = −W ∘ Σ_b e^{−D/γ_b}/γ_b
    (symmetric), ∂L/∂z = 4 (diag(G 1) z − G z). The bandwidths are constants (a detached
    centre), so no gradient flows through them. Small batches make this launch-bound, and
    a DAN step on the seed's networks is about a millisecond, so the pass is written for
    few kernel launches and little Python: the kernel family arrives resolved
    (:func:`mmd_kernel_spec`), the kernels go through exp2, W is folded into the kernel
    stack once (its sum is the loss, a matrix-vector product with −log₂e/γ gives log₂e·G)
    and the factor 4 ln 2 rides on ``addmm``'s scalars.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, w: torch.Tensor, neg_mult: torch.Tensor,
                centre: str | float) -> torch.Tensor:
        # One distance matrix serves the bandwidth and every kernel; the squared norms are
        # the Gram matrix's diagonal (a reduction fewer than summing z²).
        gram = z @ z.T
        sq = gram.diagonal()
        # Rounding can leave an off-diagonal D a hair below 0: exp(+1e−7) is harmless, and
        # a clamp would cost a launch a step.
        d = torch.add(sq[:, None] + sq[None, :], gram, alpha=-2.0)
        base = _centre_value(d, centre)  # a float on the CPU, a tensor elsewhere
        neg_inv = neg_mult * (_LOG2E / base)
        k = neg_inv.shape[0]
        ew = torch.mul(d[None], neg_inv).exp2_().reshape(k, -1).mul_(w)
        if ctx.needs_input_grad[0]:  # log₂e·G, from Σ_b W e_b · (−log₂e/γ_b)
            ctx.save_for_backward(z, torch.mv(ew.T, neg_inv.reshape(k)).reshape(d.shape))
        return ew.sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, g = ctx.saved_tensors  # g is log₂e·G: ln 2 joins the factor 4
        out = torch.addmm(g.sum(1, keepdim=True) * z, g, z, beta=_4LN2, alpha=-_4LN2)
        return out.mul_(grad), None, None, None


def mmd_kernel_spec(kernel_mul: float, kernel_num: int,
                    bandwidth: float | Sequence[float] | torch.Tensor | str | None,
                    dtype: torch.dtype, device: torch.device
                    ) -> tuple[torch.Tensor, str | float]:
    """The kernel family as :class:`_MMDPooled` takes it: −1/multiplier shaped (k, 1, 1)
    and the centre they multiply (``"mean"``, ``"median"`` or a number; 1.0 for explicit
    bandwidths). Resolve it once per fit; it does not change between steps."""
    if isinstance(bandwidth, Sequence) and not isinstance(bandwidth, str) or (
            torch.is_tensor(bandwidth) and bandwidth.ndim):
        bws = torch.as_tensor(bandwidth, dtype=dtype, device=device).reshape(-1, 1, 1)
        return -1.0 / bws, 1.0
    if bandwidth is None or bandwidth == "median":
        centre: str | float = "median"
    elif bandwidth == "mean":
        centre = "mean"
    elif isinstance(bandwidth, str):
        raise ValueError(f"bandwidth must be a number, a sequence, 'mean', 'median' or None; "
                         f"got {bandwidth!r}.")
    else:
        centre = float(bandwidth)
    return _neg_inv_multipliers(float(kernel_mul), int(kernel_num), dtype, device), centre


def mmd_loss_pooled(z: torch.Tensor, n_source: int, kernel_mul: float = 2.0,
                    kernel_num: int = 5,
                    bandwidth: float | Sequence[float] | torch.Tensor | None = None, *,
                    estimator: str = "unbiased",
                    spec: tuple[torch.Tensor, str | float] | None = None) -> torch.Tensor:
    """:func:`mmd_loss` of ``z[:n_source]`` vs ``z[n_source:]`` (quadratic estimators),
    on the pooled matrix an encoder pass over both domains returns. A training loop may
    pass ``spec`` (:func:`mmd_kernel_spec` of its kernel settings, resolved once) to skip
    resolving them every step."""
    z = _flat(z)
    if not 0 < n_source < z.shape[0]:
        raise ValueError(f"n_source must split the {z.shape[0]} rows; got {n_source}.")
    if estimator not in ("unbiased", "biased"):
        raise ValueError(f"estimator must be 'unbiased' or 'biased' here; got {estimator!r}.")
    if kernel_num < 1:
        raise ValueError("kernel_num must be at least 1.")
    neg_mult, centre = spec or mmd_kernel_spec(kernel_mul, kernel_num, bandwidth, z.dtype,
                                               z.device)
    w = _mmd_weights(int(n_source), z.shape[0] - int(n_source), estimator, z)
    return _MMDPooled.apply(z, w, neg_mult, centre)


_WEIGHTS: dict = {}


def _mmd_weights(m: int, n: int, estimator: str, like: torch.Tensor) -> torch.Tensor:
    """W with MMD² = Σ W ∘ K, flattened: 1/(m(m−1)) on source pairs i ≠ j (1/m² biased),
    1/(n(n−1)) on target pairs, −1/(mn) on cross pairs. Cached: the batch sizes repeat
    every step."""
    unbiased = estimator == "unbiased" and m > 1 and n > 1
    key = (m, n, unbiased, like.device, like.dtype)
    cached = _WEIGHTS.get(key)
    if cached is None:
        w = like.new_empty(m + n, m + n)
        w[:m, :m] = 1.0 / (m * (m - 1) if unbiased else m * m)
        w[m:, m:] = 1.0 / (n * (n - 1) if unbiased else n * n)
        w[:m, m:] = w[m:, :m] = -1.0 / (m * n)
        if unbiased:
            w.fill_diagonal_(0.0)
        if len(_WEIGHTS) > 64:
            _WEIGHTS.clear()
        cached = _WEIGHTS[key] = w.reshape(-1)
    return cached


def _linear_mmd(zs: torch.Tensor, zt: torch.Tensor, bws: torch.Tensor) -> torch.Tensor:
    n = min(zs.shape[0], zt.shape[0]) // 2 * 2
    if n < 2:
        return (zs.sum() + zt.sum()) * 0.0
    s1, s2 = zs[0:n:2], zs[1:n:2]
    t1, t2 = zt[0:n:2], zt[1:n:2]

    def k(a, b):
        d = ((a - b) ** 2).sum(1)
        return torch.exp2(d[None] * (-_LOG2E / bws.reshape(-1, 1))).sum(0)

    return (k(s1, s2) + k(t1, t2) - k(s1, t2) - k(s2, t1)).mean()


def linear_mmd_loss(zs: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
    """MMD with the linear kernel: ‖mean(z_s) − mean(z_t)‖² (first moments only)."""
    zs, zt = _check_pair(zs, zt)
    delta = zs.mean(0) - zt.mean(0)
    return (delta * delta).sum()


# --------------------------------------------------------------------------- others
def entropy_loss(probabilities: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean Shannon entropy −Σ_c p_c log p_c of rows of class probabilities.

    Minimised on target predictions (entropy minimisation, Grandvalet & Bengio 2005) it
    pushes decision boundaries away from dense target regions.
    """
    p = probabilities.clamp_min(eps)
    return -(probabilities * p.log()).sum(1).mean()


def domain_bce_loss(d_source: torch.Tensor, d_target: torch.Tensor,
                    reduction: str = "mean_of_means") -> torch.Tensor:
    """Binary cross-entropy of domain logits, source labelled 1 and target 0.

    ``"mean_of_means"`` (default) averages each domain's loss then the two, so unequal
    batch sizes weigh the domains equally: ½(−E log σ(d_s) − E log(1 − σ(d_t)));
    ``"sum_of_means"`` is twice that (ADAPT's convention); ``"mean"`` averages over the
    concatenation.
    """
    ls = F.binary_cross_entropy_with_logits(d_source.reshape(-1),
                                            torch.ones_like(d_source.reshape(-1)))
    lt = F.binary_cross_entropy_with_logits(d_target.reshape(-1),
                                            torch.zeros_like(d_target.reshape(-1)))
    if reduction == "mean_of_means":
        return 0.5 * (ls + lt)
    if reduction == "sum_of_means":
        return ls + lt
    if reduction == "mean":
        ns, nt = d_source.numel(), d_target.numel()
        return (ns * ls + nt * lt) / (ns + nt)
    raise ValueError("reduction must be 'mean_of_means', 'sum_of_means' or 'mean'.")
