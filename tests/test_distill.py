"""Knowledge distillation: the loss terms against hand computations, and the estimator.

The losses are checked where a silent failure would hide: the soft-target term against
the seed's formula (and Hinton's τ²), RKD's invariances, gradients reaching the student
and the hint regressor. The estimator is checked for doing what distillation promises:
the KD term changes the student and pulls it toward the teacher, and on a small task
with scarce labels the distilled student beats the same student trained on labels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.nn import functional as F

import transferkit as tk
from transferkit import errors
from transferkit.nn import TorchEstimator
from transferkit.parameter._distill_losses import (
    hint_loss,
    pairwise_distances,
    rkd_angle_loss,
    rkd_distance_loss,
    soft_target_loss,
)
from transferkit.parameter.distill import KnowledgeDistillation, parse_kind

# ---------------------------------------------------------------------------- helpers


def _softmax(z: np.ndarray, tau: float) -> np.ndarray:
    e = np.exp(z / tau - (z / tau).max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _rotation(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return q


@pytest.fixture(scope="module")
def moons():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    few = np.full(len(yt), np.nan)
    few[[0, 1, 2, 3, 4, 50, 51, 52, 53, 54]] = yt[[0, 1, 2, 3, 4, 50, 51, 52, 53, 54]]
    return Xs, ys, Xt, yt, few


@pytest.fixture(scope="module")
def moons_teacher(moons):
    Xs, ys, *_ = moons
    return TorchEstimator(hidden_layer_sizes=(64, 64), epochs=150, random_state=0).fit(Xs, ys)


def _kd(**params) -> KnowledgeDistillation:
    return KnowledgeDistillation(**{"epochs": 30, "random_state": 0, **params})


# ---------------------------------------------------------------------------- soft targets


def test_soft_target_loss_is_the_kl_of_the_softened_outputs():
    rng = np.random.default_rng(0)
    zs, zt = rng.normal(size=(5, 3)), 3 * rng.normal(size=(5, 3))
    for tau in (0.5, 1.0, 4.0):
        ps, pt = _softmax(zs, tau), _softmax(zt, tau)
        kl = float(np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), 1)))
        got = soft_target_loss(torch.tensor(zs), torch.tensor(zt), tau)
        assert float(got) == pytest.approx(kl, rel=1e-10)
        # Hinton et al.'s scaling is τ² times the seed's term
        got_sq = soft_target_loss(torch.tensor(zs), torch.tensor(zt), tau, tau_squared=True)
        assert float(got_sq) == pytest.approx(tau**2 * kl, rel=1e-10)
        # the seed's soft cross-entropy differs from it by the teacher's entropy only
        seed_ce = float(np.mean(np.sum(-pt * np.log(ps), 1)))
        entropy = float(np.mean(np.sum(-pt * np.log(pt), 1)))
        assert float(got) == pytest.approx(seed_ce - entropy, rel=1e-10)


def test_soft_target_loss_is_zero_at_the_teacher_and_has_gradient_elsewhere():
    zt = torch.randn(8, 4, dtype=torch.float64)
    same = zt.clone().requires_grad_(True)
    loss = soft_target_loss(same, zt, 2.0)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-12)
    assert float(same.grad.abs().max()) < 1e-12
    # a per-row constant does not change a softmax
    shifted = soft_target_loss(zt + torch.randn(8, 1, dtype=torch.float64), zt, 2.0)
    assert float(shifted) == pytest.approx(0.0, abs=1e-12)
    other = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    loss = soft_target_loss(other, zt, 2.0)
    loss.backward()
    assert loss.item() > 0
    assert float(other.grad.abs().max()) > 1e-4
    # the teacher is a constant: no gradient flows into it
    teacher = zt.clone().requires_grad_(True)
    soft_target_loss(other, teacher, 2.0).backward()
    assert teacher.grad is None


def test_soft_target_loss_ignores_classes_the_teacher_never_saw():
    zs = torch.randn(4, 3, requires_grad=True)
    zt = torch.tensor([[1.0, 2.0, -math.inf]] * 4)
    loss = soft_target_loss(zs, zt, 2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zs.grad).all()
    pt = _softmax(np.array([[1.0, 2.0]]), 2.0)[0]
    ls = F.log_softmax(zs.detach() / 2.0, 1).numpy()
    ref = np.mean([np.sum(pt * (np.log(pt) - row[:2])) for row in ls])
    assert loss.item() == pytest.approx(ref, rel=1e-5)


# ---------------------------------------------------------------------------- hints


def test_hint_loss_is_the_mse_of_the_regressed_features_and_trains_the_regressor():
    torch.manual_seed(0)
    s = torch.randn(6, 3, requires_grad=True)
    t = torch.randn(6, 5)
    reg = nn.Linear(3, 5)
    loss = hint_loss(s, t, reg)
    ref = ((reg(s) - t) ** 2).mean()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    assert reg.weight.grad is not None and float(reg.weight.grad.abs().sum()) > 0
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    with pytest.raises(errors.InputError, match="regressor"):
        hint_loss(s, t, nn.Linear(3, 4))


# ---------------------------------------------------------------------------- RKD


def test_pairwise_distances_match_scipy():
    from scipy.spatial.distance import cdist

    e = torch.randn(7, 4, dtype=torch.float64)
    np.testing.assert_allclose(pairwise_distances(e).numpy(), cdist(e.numpy(), e.numpy()),
                               atol=1e-7)


def test_rkd_distance_loss_matches_a_hand_computation():
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    ds = np.array([1.0, 1.0, math.sqrt(2)])  # pairs (0,1), (0,2), (1,2)
    dt = np.array([3.0, 4.0, 5.0])
    x = ds / ds.mean() - dt / dt.mean()
    huber = np.where(np.abs(x) <= 1, 0.5 * x**2, np.abs(x) - 0.5)
    assert float(rkd_distance_loss(s, t)) == pytest.approx(huber.mean(), rel=1e-10)


def test_rkd_angle_loss_matches_a_loop_over_triplets():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.randn(5, 6, generator=g, dtype=torch.float64)

    def cos(e, i, j, k):
        a, b = e[i] - e[j], e[k] - e[j]
        return float(a @ b / (a.norm() * b.norm()))

    vals = []
    for j in range(5):
        for i in range(5):
            for k in range(5):
                if i != j and k != j:
                    x = cos(s, i, j, k) - cos(t, i, j, k)
                    vals.append(0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5)
    assert float(rkd_angle_loss(s, t)) == pytest.approx(np.mean(vals), rel=1e-9)


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss])
def test_rkd_is_invariant_to_similarity_transforms_and_not_to_others(loss):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(12, 4, generator=g, dtype=torch.float64)
    t = torch.randn(12, 6, generator=g, dtype=torch.float64)
    base = float(loss(s, t))
    assert base > 0
    moved = 3.7 * t @ _rotation(6) + 5.0  # scale, rotate, translate the teacher
    assert float(loss(s, moved)) == pytest.approx(base, rel=1e-9)
    assert float(loss(0.2 * s @ _rotation(4, 1) - 1.0, t)) == pytest.approx(base, rel=1e-9)
    # a student that is a similarity transform of the teacher (other width) has zero loss
    embed = torch.cat([t, torch.zeros(12, 2, dtype=torch.float64)], 1) @ _rotation(8, 2)
    assert float(loss(0.5 * embed, t)) == pytest.approx(0.0, abs=1e-12)
    # a non-uniform scaling changes the relations
    stretched = t * torch.tensor([10.0, 1, 1, 1, 1, 1], dtype=torch.float64)
    assert float(loss(t, stretched)) > 1e-4


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss])
def test_rkd_sends_gradients_to_the_student_only(loss):
    s = torch.randn(10, 3, requires_grad=True)
    t = torch.randn(10, 5, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    assert torch.isfinite(s.grad).all()
    assert t.grad is None
    # tiny batches have no pairs / triplets
    assert loss(s[:1], t[:1]).item() == 0.0
    # coincident rows do not make NaN gradients
    dup = torch.zeros(4, 3, requires_grad=True)
    loss(dup, t[:4]).backward()
    assert torch.isfinite(dup.grad).all()


# ---------------------------------------------------------------------------- estimator


def _kl_to_teacher(model: KnowledgeDistillation, teacher, X) -> float:
    p_t = np.clip(teacher.predict_proba(X), 1e-12, 1)
    p_s = np.clip(model.predict_proba(X), 1e-12, 1)
    return float(np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), 1)))


def test_kd_term_changes_the_student_and_pulls_it_toward_the_teacher(moons, moons_teacher):
    Xs, ys, Xt, yt, few = moons
    label_only = _kd(teacher=moons_teacher, alpha=0.0, tau=1.0, epochs=200)
    label_only.fit(Xs, ys, Xt, few)
    distilled = _kd(teacher=moons_teacher, alpha=0.5, tau=1.0, epochs=200)
    distilled.fit(Xs, ys, Xt, few)
    assert not np.allclose(label_only.predict_proba(Xt), distilled.predict_proba(Xt))
    kl0 = _kl_to_teacher(label_only, moons_teacher, Xt)
    kl1 = _kl_to_teacher(distilled, moons_teacher, Xt)
    assert kl1 < 0.6 * kl0, (kl0, kl1)
    # the logged KD term is computed (and trained down) in both, weighted only in one
    assert distilled.history_["kd"][-1] < label_only.history_["kd"][-1]
    assert distilled.history_["kd"][-1] < distilled.history_["kd"][0]


def test_pure_distillation_without_target_labels_imitates_the_teacher(moons, moons_teacher):
    Xs, ys, Xt, yt, _ = moons
    m = _kd(teacher=moons_teacher, alpha=1.0, tau=1.0, epochs=400).fit(Xs, ys, Xt)
    assert "ce" not in m.history_
    agree = np.mean(m.predict(Xt) == moons_teacher.predict(Xt))
    assert agree >= 0.95


def _digits_task():
    Xs, ys, Xt, yt = tk.datasets.make_digits_shift(shift="noise", noise_std=4, random_state=0)
    return Xs / 16, ys, Xt / 16, yt


def _three_per_class(yt: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full(len(yt), np.nan)
    for c in np.unique(yt):
        idx = rng.choice(np.flatnonzero(yt == c), 3, replace=False)
        out[idx] = c
    return out


def test_kd_student_beats_the_label_only_student_over_five_seeds():
    # Cross-domain distillation with scarce labels: teacher trained on the 899 labelled
    # source digits, student on the 898 noisy target digits with 3 labels per class.
    Xs, ys, Xt, yt = _digits_task()
    kd, labels = [], []
    for seed in range(5):
        few = _three_per_class(yt, seed)
        params = dict(standardize=False, epochs=40, batch_size=128, random_state=seed)
        m = KnowledgeDistillation(**params).fit(Xs, ys, Xt, few)
        kd.append(m.score(Xt, yt))
        alone = KnowledgeDistillation(teacher=m.teacher_, alpha=0.0, **params)
        labels.append(alone.fit(Xs, ys, Xt, few).score(Xt, yt))
    kd, labels = np.array(kd), np.array(labels)
    assert kd.mean() >= labels.mean() + 0.03, (kd, labels)
    assert (kd > labels).sum() >= 4, (kd, labels)


class _OddTeacher(nn.Module):
    """Not a Sequential: a wide trunk and a head, reachable by name only."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(2, 48), nn.Tanh(), nn.Linear(48, 24), nn.Tanh())
        self.head = nn.Linear(24, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def _trained(module: nn.Module, X: np.ndarray, y: np.ndarray) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    Xt_, yt_ = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y).long()
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(module(Xt_), yt_).backward()
        opt.step()
    return module.eval()


@pytest.mark.parametrize("kind", ["response", "feature", "relation",
                                  "response+feature+relation"])
def test_teacher_and_student_with_different_architectures(moons, kind):
    Xs, ys, Xt, yt, few = moons
    teacher = _trained(_OddTeacher(), Xs, ys)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = nn.Sequential(nn.Linear(2, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(),
                            nn.Linear(5, 2))
    m = _kd(teacher=teacher, student=student, kind=kind, teacher_layer="trunk")
    m.fit(Xs, ys, Xt, few)
    assert m.predict_proba(Xt).shape == (len(Xt), 2)
    assert m.score(Xt, yt) > 0.5
    if "feature" in kind:
        assert m.networks_["regressor"].weight.shape == (24, 5)
        assert "hint" in m.history_
    if "relation" in kind:
        assert {"rkd_distance", "rkd_angle"} <= set(m.history_)
    assert m.transform(Xt).shape == (len(Xt), 5)
    # the caller's teacher is untouched and carries no leftover hooks
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k])
    assert not teacher.training
    for mod in list(teacher.modules()) + list(m.networks_.modules()):
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_hint_regressor_is_trained_by_the_feature_term(moons, moons_teacher):
    Xs, ys, Xt, _, few = moons
    m = _kd(teacher=moons_teacher, kind="feature", epochs=40).fit(Xs, ys, Xt, few)
    hint = m.history_["hint"]
    assert hint[-1] < 0.5 * hint[0]
    torch.manual_seed(0)
    fresh = nn.Linear(*m.networks_["regressor"].weight.shape[::-1])
    assert not torch.allclose(fresh.weight, m.networks_["regressor"].weight)


def test_a_binary_teacher_with_one_logit_and_a_fitted_sklearn_teacher(moons):
    Xs, ys, Xt, yt, few = moons
    one_logit = _trained(nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)),
                         Xs, ys)
    # as a single logit: z1 - z0 gives the same soft targets
    w, b = one_logit[2].weight.data, one_logit[2].bias.data
    single = nn.Sequential(one_logit[0], one_logit[1], nn.Linear(16, 1))
    single[2].weight.data, single[2].bias.data = (w[1] - w[0])[None], (b[1] - b[0])[None]
    a = _kd(teacher=one_logit).fit(Xs, ys, Xt, few).predict_proba(Xt)
    b_ = _kd(teacher=single).fit(Xs, ys, Xt, few).predict_proba(Xt)
    np.testing.assert_allclose(a, b_, atol=1e-5)

    lr = LogisticRegression().fit(Xs, ys)
    m = _kd(teacher=lr).fit(Xs, ys, Xt, few)
    assert m.teacher_ is lr
    with pytest.raises(errors.ParameterError, match="torch"):
        _kd(teacher=lr, kind="relation").fit(Xs, ys, Xt, few)


def test_an_unfitted_teacher_is_cloned_and_fitted_on_the_source(moons):
    Xs, ys, Xt, yt, few = moons
    proto = LogisticRegression()
    m = _kd(teacher=proto).fit(Xs, ys, Xt, few)
    assert not hasattr(proto, "coef_")  # the hyper-parameter itself is untouched
    np.testing.assert_allclose(m.teacher_.coef_, LogisticRegression().fit(Xs, ys).coef_)


def test_a_fitted_deep_adaptation_teacher_exposes_its_layers(moons):
    from transferkit.feature import DANN

    Xs, ys, Xt, yt, few = moons
    dann = DANN(epochs=20, random_state=0).fit(Xs, ys, Xt)
    m = _kd(teacher=dann, kind="response+feature", teacher_layer="encoder")
    m.fit(Xs, ys, Xt, few)
    assert m.teacher_ is dann
    assert m.networks_["regressor"].weight.shape[0] == 64


def test_a_distilled_student_teaches_the_next_one(moons, moons_teacher):
    Xs, ys, Xt, yt, few = moons
    first = _kd(teacher=moons_teacher, hidden_layer_sizes=(16,)).fit(Xs, ys, Xt, few)
    second = _kd(teacher=first, kind="response+relation", hidden_layer_sizes=(4,))
    second.fit(Xs, ys, Xt, few)
    assert second.teacher_ is first
    assert second.transform(Xt).shape == (len(Xt), 4)


def test_transfer_sets(moons, moons_teacher):
    Xs, ys, Xt, yt, few = moons
    target = _kd(teacher=moons_teacher, epochs=3).fit(Xs, ys, Xt)
    assert set(target.history_) == {"loss", "kd"}  # no target labels: distillation only
    source = _kd(teacher=moons_teacher, transfer_set="source", epochs=3).fit(Xs, ys, Xt)
    assert {"ce", "kd"} <= set(source.history_)  # the seed's experiment 1
    both = _kd(teacher=moons_teacher, transfer_set="both", epochs=3).fit(Xs, ys, Xt, few)
    assert {"ce", "kd"} <= set(both.history_)


def test_default_teacher_is_trained_on_the_source(moons):
    Xs, ys, Xt, yt, few = moons
    m = _kd(teacher_hidden=(16,), teacher_epochs=5).fit(Xs, ys, Xt, few)
    assert isinstance(m.teacher_, TorchEstimator)
    assert m.teacher_.hidden_layer_sizes == (16,)
    assert m.teacher_.n_features_in_ == 2 and list(m.teacher_.classes_) == [0, 1]


def test_regression_distils_the_teachers_outputs():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(n_source=200, n_target=200,
                                                      task="regression", random_state=0)
    teacher = TorchEstimator(hidden_layer_sizes=(64,), epochs=100, random_state=0)
    teacher.fit(Xs, ys)
    few = np.full(len(yt), np.nan)
    few[:5] = yt[:5]
    alone = _kd(teacher=teacher, alpha=0.0, epochs=60).fit(Xs, ys, Xt, few)
    kd = _kd(teacher=teacher, alpha=0.9, epochs=60).fit(Xs, ys, Xt, few)
    gap = lambda m: np.mean((m.predict(Xt) - teacher.predict(Xt)) ** 2)  # noqa: E731
    assert gap(kd) < 0.5 * gap(alone)
    assert np.isfinite(kd.predict(Xt)).all()


def test_clone_and_params(moons_teacher):
    m = KnowledgeDistillation(teacher=moons_teacher, kind=("response", "relation"), tau=3.0,
                              alpha=0.7, random_state=1)
    params = m.get_params(deep=False)
    c = clone(m)
    assert c.get_params(deep=False).keys() == params.keys()
    for k in ("kind", "tau", "alpha", "beta", "transfer_set", "hidden_layer_sizes"):
        assert c.get_params()[k] == params[k]
    assert c.set_params(tau=8.0).tau == 8.0
    assert "teacher__epochs" in m.get_params(deep=True)


def test_parse_kind():
    assert parse_kind("relation+response") == ("response", "relation")
    assert parse_kind(["feature"]) == ("feature",)
    with pytest.raises(errors.ParameterError, match="response"):
        parse_kind("responce")


@pytest.mark.parametrize("params,match", [
    ({"kind": "logits"}, "kind must be"),
    ({"kind": 3}, "kind must be"),
    ({"tau": 0}, "temperature"),
    ({"tau": -1.0}, "temperature"),
    ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
    ({"beta": -0.1}, "beta"),
    ({"transfer_set": "all"}, "transfer_set"),
    ({"rkd_weights": (1.0,)}, "rkd_weights"),
    ({"student": "mlp"}, "student must be"),
    ({"teacher_epochs": 0}, "teacher_epochs"),
    ({"teacher": object()}, "teacher must be"),
    ({"kind": "feature", "student": nn.Linear(2, 2)}, "student_layer"),
    ({"kind": "feature", "student_layer": "nope"}, "not a submodule"),
])
def test_bad_parameters_raise_helpful_errors(moons, params, match):
    Xs, ys, Xt, yt, few = moons
    with pytest.raises(errors.ParameterError, match=match):
        _kd(**{"epochs": 1, "teacher_epochs": 1, **params}).fit(Xs, ys, Xt, few)


def test_bad_teacher_or_student_shapes_raise(moons):
    Xs, ys, Xt, yt, few = moons
    with pytest.raises(errors.ParameterError, match="3 logits"):
        _kd(teacher=nn.Linear(2, 3)).fit(Xs, ys, Xt, few)
    with pytest.raises(errors.ParameterError, match="student returns 4"):
        _kd(student=nn.Linear(2, 4), teacher_epochs=1).fit(Xs, ys, Xt, few)
    with pytest.raises(errors.ParameterError, match="teacher_layer"):
        _kd(teacher=_OddTeacher(), kind="feature").fit(Xs, ys, Xt, few)
    with pytest.raises(errors.ParameterError, match="unknown fit parameters"):
        _kd(teacher=nn.Linear(2, 2)).fit(Xs, ys, Xt, few, lr=1.0)


def test_feature_kd_without_any_labels_says_what_to_do(moons):
    Xs, ys, Xt, yt, _ = moons
    with pytest.raises(errors.MissingTargetLabelsError, match="add 'response'"):
        _kd(kind="feature", teacher_epochs=1).fit(Xs, ys, Xt)


def test_registered_as_a_parameter_method():
    info = tk.get_method("KnowledgeDistillation")
    assert info.family == "parameter" and info.backend == "torch"
    assert set(info.tasks) == {"classification", "regression"}
    assert not info.needs_target_labels
