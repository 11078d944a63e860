"""The loss terms of knowledge distillation, one small function per paper.

Each function takes the student's and the teacher's outputs for the same minibatch (the
teacher's are treated as constants: they carry no gradient) and returns a scalar tensor.

- :func:`soft_target_loss` -- response-based, soft targets at temperature τ
  (Hinton, Vinyals & Dean, 2015), written as in the seed tutorial.
- :func:`hint_loss` -- feature-based, FitNet hints through a learned regressor
  (Romero et al., 2015).
- :func:`rkd_distance_loss`, :func:`rkd_angle_loss` -- relation-based, the distance- and
  angle-wise relational knowledge distillation of Park, Kim, Lu & Cho (2019).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ..errors import InputError

__all__ = ["soft_target_loss", "hint_loss", "rkd_distance_loss", "rkd_angle_loss",
           "pairwise_distances"]


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     tau: float = 1.0, *, tau_squared: bool = False) -> torch.Tensor:
    """Response-based distillation: KL(ŷᵀ(τ) ‖ ŷˢ(τ)), averaged over the batch.

    With the softened outputs of the seed (and of Hinton et al.)

        ŷ_i(τ) = softmax(z, τ)_i = exp(z_i / τ) / Σ_j exp(z_j / τ),

    this returns

        L_KD = mean_x Σ_{i∈C} ŷᵀ_i(τ) [log ŷᵀ_i(τ) − log ŷˢ_i(τ)]      (× τ² if tau_squared)

    The seed tutorial's student loss is

        L = α · Σ_{i∈C} −ŷᵀ_i(τ) log ŷˢ_i(τ)  +  (1 − α) · Σ_{i∈C} −y_i log ŷˢ_i(1)

    whose first sum is the soft cross-entropy; it equals L_KD plus the teacher's entropy
    H(ŷᵀ(τ)), which does not depend on the student, so both have the same gradients and
    the same minimiser. The KL form is returned because it is 0 exactly when the student
    matches the teacher, which makes the logged value readable.

    Where the seed and Hinton et al. (2015) differ: the paper multiplies the soft term by
    τ², because its gradients scale as 1/τ², "to ensure that the relative contributions
    of the hard and soft targets remain roughly unchanged" as τ changes. The seed's
    formula has no τ²; ``tau_squared=False`` (the default) follows the seed exactly and
    ``tau_squared=True`` gives the paper's scaling.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (n, n_classes)
        Pre-softmax outputs z. The teacher's may hold ``-inf`` for classes it never saw
        (probability 0); they contribute nothing.
    tau : float, default=1.0
        Temperature τ > 0; larger τ gives softer distributions.
    tau_squared : bool, default=False
        Multiply by τ² (Hinton et al.) instead of the seed's plain sum.

    Returns
    -------
    Tensor
        A scalar; 0 when the student's logits equal the teacher's up to a per-row
        constant.
    """
    tau = float(tau)
    log_p_s = F.log_softmax(student_logits / tau, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / tau, dim=1)
    p_t = log_p_t.exp()
    # 0 · log 0 = 0: classes the teacher gives probability 0 drop out (no NaN from -inf).
    per_class = torch.where(p_t > 0, p_t * (log_p_t - log_p_s), torch.zeros_like(p_t))
    loss = per_class.sum(1).mean()
    return loss * tau**2 if tau_squared else loss


def hint_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor,
              regressor: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Feature-based distillation: the FitNet hint loss (Romero et al., 2015).

    A regressor r maps the student's guided layer v (any width) to the width of the
    teacher's hint layer u, and the student learns to predict the hint:

        L_HT = ½ ‖u(x) − r(v(x))‖²

    This returns the squared error averaged over the batch *and* over the d dimensions
    of the hint (torch's mean-squared error, i.e. (2/d)·L_HT averaged over examples), so
    that the weight of the term does not depend on the teacher's width. The regressor's
    parameters are trained together with the student's (its gradient comes from this
    loss only). FitNets train the hint in a first stage and distil in a second; used as
    an extra term of one loss, as here, it is the one-stage variant that later work
    (e.g. torchdistill's FitNet configurations) uses.

    Parameters
    ----------
    student_feat : Tensor of shape (n, d_student) (or (n, ...), flattened)
    teacher_feat : Tensor of shape (n, d_teacher) (or (n, ...), flattened)
    regressor : callable
        Usually a ``torch.nn.Linear(d_student, d_teacher)`` trained with the student.
    """
    s = student_feat.reshape(len(student_feat), -1)
    t = teacher_feat.detach().reshape(len(teacher_feat), -1)
    r = regressor(s).reshape(len(s), -1)
    if r.shape != t.shape:
        raise InputError(f"the regressor maps the student's features to shape "
                         f"{tuple(r.shape)} but the teacher's hint has shape {tuple(t.shape)}.")
    return F.mse_loss(r, t)


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances ‖e_i − e_j‖ of the rows of ``e`` (0 on the diagonal).

    From the Gram matrix of the centred rows, ‖e_i − e_j‖² = G_ii + G_jj − 2 G_ij
    (n²·d work and memory instead of the n²·d-element tensor of differences; centring
    keeps the cancellation small), with the squared distance clamped at ``eps`` so the
    square root's gradient stays finite for coincident rows.
    """
    e = e.reshape(len(e), -1)
    e = e - e.mean(0, keepdim=True)
    g = e @ e.t()
    sq = g.diagonal().unsqueeze(0) + g.diagonal().unsqueeze(1) - 2 * g
    d = sq.clamp_min(eps).sqrt()
    return d * (1 - torch.eye(len(e), dtype=d.dtype, device=d.device))


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    """ψ_D over the pairs i < j: distances divided by their mean μ over the batch."""
    e = e.reshape(len(e), -1)
    i, j = torch.triu_indices(len(e), len(e), offset=1, device=e.device)
    d = pairwise_distances(e)[i, j]
    return d / d.mean().clamp_min(1e-12)


def rkd_distance_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Relation-based distillation, distance-wise (RKD-D; Park et al., 2019).

    For every pair of examples (i, j) in the batch,

        ψ_D(t_i, t_j) = ‖t_i − t_j‖₂ / μ,   μ = mean over pairs of ‖t_i − t_j‖₂,

    and the loss is the mean over pairs of the Huber loss
    l_δ(ψ_D(t_i, t_j), ψ_D(s_i, s_j)) with δ = 1 (smooth-L1: ½x² for |x| ≤ 1, |x| − ½
    beyond). Student and teacher embeddings may have different widths; dividing by μ
    makes the loss invariant to a rescaling of either embedding, and distances make it
    invariant to rotations, reflections and translations.

    Parameters
    ----------
    student_emb : Tensor of shape (n, d_student)
    teacher_emb : Tensor of shape (n, d_teacher)

    Returns
    -------
    Tensor
        A scalar (0 for a batch of fewer than two examples).
    """
    if len(student_emb) < 2:
        return student_emb.sum() * 0.0
    with torch.no_grad():
        t = _normalised_distances(teacher_emb.detach())
    return F.smooth_l1_loss(_normalised_distances(student_emb), t)


def _angles(e: torch.Tensor) -> torch.Tensor:
    """ψ_A(e_i, e_j, e_k) for all triplets as an (n, n, n) tensor indexed [j, i, k].

    ⟨e_i − e_j, e_k − e_j⟩ = G_ik − G_ij − G_jk + G_jj with the Gram matrix G of the
    centred embeddings, divided by the two distances: n³ scalar operations instead of
    the n³·d of explicit difference vectors. Entries with i = j or k = j are 0.
    """
    e = e.reshape(len(e), -1)
    e = e - e.mean(0, keepdim=True)  # translation-free; keeps the Gram products small
    g = e @ e.t()
    inv = pairwise_distances(e)
    inv = torch.where(inv > 0, 1.0 / inv.clamp_min(1e-12), torch.zeros_like(inv))
    dot = g.unsqueeze(0) - g.unsqueeze(2) - g.unsqueeze(1) + g.diagonal().view(-1, 1, 1)
    return dot * inv.unsqueeze(2) * inv.unsqueeze(1)


def rkd_angle_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """Relation-based distillation, angle-wise (RKD-A; Park et al., 2019).

    For every triplet (i, j, k) of examples in the batch, the cosine of the angle at j,

        ψ_A(t_i, t_j, t_k) = ⟨e_ij, e_kj⟩,   e_ij = (t_i − t_j) / ‖t_i − t_j‖₂,

    and the loss is the mean over triplets (i ≠ j, k ≠ j) of the Huber loss
    l_δ(ψ_A(t), ψ_A(s)) with δ = 1. Angles are invariant to rescaling, rotation,
    reflection and translation of either embedding. Memory grows as n³ per batch
    (64 examples: 262 144 cosines).

    Parameters
    ----------
    student_emb : Tensor of shape (n, d_student)
    teacher_emb : Tensor of shape (n, d_teacher)

    Returns
    -------
    Tensor
        A scalar (0 for a batch of fewer than three examples).
    """
    n = len(student_emb)
    if n < 3:
        return student_emb.sum() * 0.0
    with torch.no_grad():
        t = _angles(teacher_emb.detach())
    # Triplets with i = j or k = j are 0 for both and add nothing; average over the rest.
    per = F.smooth_l1_loss(_angles(student_emb), t, reduction="sum")
    return per / (n * (n - 1) ** 2)
