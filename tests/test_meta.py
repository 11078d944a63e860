"""Meta-learning: task samplers, MAML (second and first order) and ProtoNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from torch import nn

import transferkit as tk
from transferkit import errors
from transferkit.parameter import (
    MAML,
    ArrayTasks,
    ProtoNet,
    RotatedMoonsTasks,
    SinusoidTasks,
    Task,
    draw_adaptation_grid,
)
from transferkit.parameter.maml import batched_forward, inner_loop, task_losses
from transferkit.parameter.protonet import prototype_logits
from transferkit.parameter.tasks import _circular_distance, rotate, stack_tasks

HELD_OUT = (-120, -60, 0, 60, 120, 180)


@pytest.fixture(scope="module")
def moons():
    return RotatedMoonsTasks(shots=10, query=15, held_out=HELD_OUT, held_out_width=20)


@pytest.fixture(scope="module")
def fitted(moons):
    # 300 meta-updates: enough for the fast acceptance check (about 4 s on one core).
    return MAML(epochs=6, steps_per_epoch=50, random_state=0).fit(moons)


# ---------------------------------------------------------------------------- samplers
def test_rotated_moons_shapes_labels_and_reproducibility(moons):
    tasks = moons.sample(8, rng=0)
    assert len(tasks) == 8 and all(isinstance(t, Task) for t in tasks)
    Xs, ys, Xq, yq = tasks[0]
    assert Xs.shape == (20, 2) and Xq.shape == (30, 2)
    assert np.bincount(ys).tolist() == [10, 10] and np.bincount(yq).tolist() == [15, 15]
    again = moons.sample(8, rng=0)
    for a, b in zip(tasks, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    other = moons.sample(8, rng=1)
    assert not np.allclose(tasks[0].X_support, other[0].X_support)
    # the rotation is the one of make_two_moons_shift
    Xs0, _, Xt0, _ = tk.datasets.make_two_moons_shift(rotation=30, random_state=0)
    np.testing.assert_allclose(rotate(Xs0, 30), Xt0, atol=1e-12)


def test_held_out_angles_are_disjoint_from_training_angles(moons):
    train = moons.sample_angles(3000, rng=0)
    test = moons.held_out_sampler().sample_angles(500, rng=0)
    d_train = _circular_distance(train, np.array(HELD_OUT)).min(1)
    d_test = _circular_distance(test, np.array(HELD_OUT)).min(1)
    assert d_train.min() > 10 and d_test.max() <= 10
    assert train.min() < -165 and train.max() > 165  # the rest of the range is covered
    # angles near ±180 wrap: 180 is held out, so is -179
    assert (np.abs(test) > 170).any()
    assert moons.split == "train"  # held_out_sampler returns a copy


def test_tasks_at_rotates_the_moons(moons):
    (t0,), (t90,) = moons.tasks_at([0], rng=3), moons.tasks_at([90], rng=3)
    np.testing.assert_allclose(rotate(t0.X_support, 90), t90.X_support, atol=1e-12)


def test_sampler_parameters_are_checked():
    with pytest.raises(errors.ParameterError, match="held_out"):
        RotatedMoonsTasks(split="held_out").sample(2, rng=0)
    with pytest.raises(errors.ParameterError, match="shots"):
        RotatedMoonsTasks(shots=0).sample(2, rng=0)
    with pytest.raises(errors.ParameterError, match="no angle"):
        RotatedMoonsTasks(held_out=(0,), held_out_width=359.9, angle_range=(-10, 10)).sample(
            2, rng=0)


def test_array_tasks_builds_n_way_k_shot_episodes():
    X, y = load_digits(return_X_y=True)
    sampler = ArrayTasks(X, y, n_ways=5, shots=3, query=4, classes=range(5, 10))
    tasks = sampler.sample(20, rng=0)
    lookup = {row.tobytes(): label for row, label in zip(X, y)}
    for t in tasks:
        assert t.X_support.shape == (15, 64) and t.X_query.shape == (20, 64)
        assert np.bincount(t.y_support).tolist() == [3] * 5
        assert np.bincount(t.y_query).tolist() == [4] * 5
        orig_s = np.array([lookup[r.tobytes()] for r in t.X_support])
        orig_q = np.array([lookup[r.tobytes()] for r in t.X_query])
        assert set(orig_s) <= set(range(5, 10))
        # one original class per episode label, the same in support and query
        for k in range(5):
            assert len(set(orig_s[t.y_support == k]) | set(orig_q[t.y_query == k])) == 1
        # no example is both in the support and the query set
        assert not {r.tobytes() for r in t.X_support} & {r.tobytes() for r in t.X_query}
    with pytest.raises(errors.InputError, match="n_ways"):
        ArrayTasks(X, y, n_ways=11).sample(1, rng=0)
    with pytest.raises(errors.ParameterError, match="do not occur"):
        ArrayTasks(X, y, classes=[42, 43]).sample(1, rng=0)
    with pytest.raises(errors.NonFiniteInputError):
        ArrayTasks(np.full((4, 2), np.nan), [0, 1, 0, 1])
    assert clone(sampler).get_params()["n_ways"] == 5


def test_stack_tasks_needs_one_shape(moons):
    a = moons.sample(1, rng=0)[0]
    b = RotatedMoonsTasks(shots=3).sample(1, rng=0)[0]
    with pytest.raises(errors.InputError, match="one shape"):
        stack_tasks([a, b])


# ---------------------------------------------------------------------------- MAML maths
def _tiny_problem(seed=0, T=3, n=6):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    X = torch.randn(T, 2 * n, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (T, 2 * n), generator=g)
    return net, X[:, :n], y[:, :n], X[:, n:], y[:, n:]


def _meta_objective(net, flat, Xs, ys, Xq, yq, steps, lr, first_order, forward=None):
    shapes = [(k, p.shape) for k, p in net.named_parameters()]
    params, i = {}, 0
    for k, s in shapes:
        params[k] = flat[i:i + s.numel()].view(s)
        i += s.numel()
    forward = forward or batched_forward(net)
    T = Xs.shape[0]
    P = {k: v.unsqueeze(0).expand(T, *v.shape) for k, v in params.items()}
    adapted, _ = inner_loop(forward, P, Xs, ys, steps, lr, "classification",
                            create_graph=not first_order)
    return task_losses(forward(adapted, Xq), yq, "classification").mean()


def _reference_objective(net, flat, Xs, ys, Xq, yq, steps, lr):
    """Second-order MAML written out task by task with plain autograd (no vmap)."""
    from torch.func import functional_call

    names = [k for k, _ in net.named_parameters()]
    sizes = [p.numel() for p in net.parameters()]
    total = 0.0
    for t in range(Xs.shape[0]):
        chunks = torch.split(flat, sizes)
        p = {k: c.view(q.shape) for k, c, q in zip(names, chunks, net.parameters())}
        for _ in range(steps):
            loss = nn.functional.cross_entropy(functional_call(net, p, (Xs[t],)), ys[t])
            grads = torch.autograd.grad(loss, list(p.values()), create_graph=True)
            p = {k: v - lr * g for (k, v), g in zip(p.items(), grads)}
        total = total + nn.functional.cross_entropy(functional_call(net, p, (Xq[t],)), yq[t])
    return total / Xs.shape[0]


def test_second_order_meta_gradient_matches_finite_differences_and_reference():
    net, Xs, ys, Xq, yq = _tiny_problem()
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    steps, lr = 2, 0.5

    def f(v, first_order=False):
        return _meta_objective(net, v, Xs, ys, Xq, yq, steps, lr, first_order)

    w = flat0.clone().requires_grad_(True)
    g2 = torch.autograd.grad(f(w), w)[0]
    w = flat0.clone().requires_grad_(True)
    g1 = torch.autograd.grad(f(w, first_order=True), w)[0]
    w = flat0.clone().requires_grad_(True)
    g_ref = torch.autograd.grad(_reference_objective(net, w, Xs, ys, Xq, yq, steps, lr), w)[0]
    def value(v):  # the inner steps differentiate, so the point needs requires_grad
        return f(v.clone().requires_grad_(True)).detach()

    eps = 1e-6
    fd = torch.stack([(value(flat0 + eps * e) - value(flat0 - eps * e)) / (2 * eps)
                      for e in torch.eye(flat0.numel(), dtype=torch.float64)])
    torch.testing.assert_close(g2, fd, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(g2, g_ref, rtol=1e-10, atol=1e-12)
    # first order drops the Hessian terms: a clearly different gradient on a tanh network
    assert (g1 - g2).norm() > 0.05 * g2.norm()
    # the MLP fast path and the generic vmap path compute the same function
    from torch.func import functional_call, vmap

    def generic(p, x):
        return vmap(lambda pp, xx: functional_call(net, pp, (xx,)))(p, x)

    w = flat0.clone().requires_grad_(True)
    torch.testing.assert_close(f(w), _meta_objective(net, w, Xs, ys, Xq, yq, steps, lr, False,
                                                     forward=generic))


def test_first_order_gradient_is_the_query_gradient_at_the_adapted_parameters():
    net, Xs, ys, Xq, yq = _tiny_problem(seed=1)
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    w = flat0.clone().requires_grad_(True)
    g1 = torch.autograd.grad(_meta_objective(net, w, Xs, ys, Xq, yq, 3, 0.3, True), w)[0]
    # FOMAML: mean over tasks of ∇θ' L_query(θ'), θ' from 3 plain gradient steps
    from torch.func import functional_call

    grads = []
    for t in range(Xs.shape[0]):
        p = {k: v.detach().clone() for k, v in net.named_parameters()}
        for _ in range(3):
            p = {k: v.requires_grad_(True) for k, v in p.items()}
            loss = nn.functional.cross_entropy(functional_call(net, p, (Xs[t],)), ys[t])
            gs = torch.autograd.grad(loss, list(p.values()))
            p = {k: (v - 0.3 * g).detach() for (k, v), g in zip(p.items(), gs)}
        p = {k: v.requires_grad_(True) for k, v in p.items()}
        loss = nn.functional.cross_entropy(functional_call(net, p, (Xq[t],)), yq[t])
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(
            p.values()))]))
    torch.testing.assert_close(g1, torch.stack(grads).mean(0), rtol=1e-10, atol=1e-12)


def test_estimator_meta_gradient_first_and_second_order_differ(moons):
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    m = MAML(model=model, epochs=1, steps_per_epoch=1, inner_steps=2, random_state=0)
    m.fit(moons)
    tasks = moons.sample(4, rng=0)
    g2 = m.meta_gradient(tasks, first_order=False)
    g1 = m.meta_gradient(tasks, first_order=True)
    diff = sum(float((g1[k] - g2[k]).norm()) for k in g1)
    assert diff > 1e-3 * sum(float(g2[k].norm()) for k in g2)


# ---------------------------------------------------------------------------- MAML estimator
def test_adaptation_lowers_the_support_loss(fitted, moons):
    Xs, ys, Xq, yq = moons.held_out_sampler().sample(1, rng=5)[0]
    for init in ("meta", "random"):
        model = fitted.adapt(Xs, ys, steps=5, init=init, random_state=0)
        losses = model.support_losses_
        assert len(losses) == 6 and losses[-1] < losses[0]
        assert model.predict(Xq).shape == (30,)
        proba = model.predict_proba(Xq)
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    zero = fitted.adapt(Xs, ys, steps=0)
    with torch.no_grad():
        for a, b in zip(zero.module_.parameters(), fitted.module_.parameters()):
            assert torch.equal(a, b)  # 0 steps is the initialisation itself


def test_maml_beats_random_initialisation_fast(fitted, moons):
    """Fast version of the acceptance test (300 meta-updates, margin >= 5 points)."""
    tasks = moons.held_out_sampler().sample(100, rng=1)
    meta = fitted.evaluate(tasks, steps=5).mean()
    rand = fitted.evaluate(tasks, steps=5, init="random", random_state=0).mean()
    assert meta > 0.85 and meta - rand >= 0.05, (meta, rand)
    # evaluate agrees with adapting task by task
    one = fitted.adapt(tasks[0].X_support, tasks[0].y_support, steps=5)
    assert one.score(tasks[0].X_query, tasks[0].y_query) == pytest.approx(
        fitted.evaluate(tasks[:1], steps=5)[0, 0])


@pytest.mark.slow
def test_maml_acceptance_held_out_rotations():
    """Acceptance: 5 steps from the MAML init with 10 shots beat 5 steps from a random init
    by >= 10 points of accuracy on held-out rotations (1000 meta-updates, ~15 s)."""
    sampler = RotatedMoonsTasks(shots=10, held_out=HELD_OUT, held_out_width=20)
    tasks = sampler.held_out_sampler().sample(200, rng=2024)
    m = MAML(epochs=20, steps_per_epoch=50, random_state=1).fit(sampler)
    meta = m.evaluate(tasks, steps=5).mean()
    rand = m.evaluate(tasks, steps=5, init="random", random_state=1).mean()
    assert meta - rand >= 0.10, (meta, rand)


def test_fit_is_reproducible_and_resumes_with_the_same_tasks(moons, tmp_path):
    kw = dict(epochs=4, steps_per_epoch=5, meta_batch_size=4, random_state=3)
    a = MAML(**kw).fit(moons)
    b = MAML(**kw).fit(moons)
    for p, q in zip(a.module_.parameters(), b.module_.parameters()):
        assert torch.equal(p, q)
    ckpt = {"checkpoint_dir": str(tmp_path), "checkpoint_every": 1}
    MAML(**{**kw, "epochs": 2}, trainer_params=ckpt).fit(moons)  # "interrupted" after 2
    c = MAML(**kw, trainer_params={**ckpt, "resume": True}).fit(moons)
    for p, q in zip(a.module_.parameters(), c.module_.parameters()):
        torch.testing.assert_close(p, q)
    assert len(c.history_["loss"]) == 4


def test_first_order_maml_trains(moons):
    m = MAML(first_order=True, epochs=2, steps_per_epoch=20, random_state=0).fit(moons)
    assert np.isfinite(m.history_["loss"]).all()
    assert m.history_["support_loss_after"][-1] < m.history_["support_loss_before"][-1]


def test_params_clone_and_fitted_attributes(fitted):
    params = fitted.get_params()
    c = clone(fitted)
    assert c.get_params().keys() == params.keys()
    assert not hasattr(c, "module_")
    for name in ("module_", "history_", "task_", "n_outputs_", "n_features_in_", "x_mean_"):
        assert hasattr(fitted, name)
    assert params["epochs"] == 6 and params["inner_steps"] == 5


def test_maml_errors(fitted, moons):
    X = np.zeros((4, 2))
    with pytest.raises(errors.NotFittedError):
        MAML().adapt(X, [0, 1, 0, 1])
    with pytest.raises(errors.InputError, match="sampler"):
        MAML().fit(np.zeros((10, 2)))
    with pytest.raises(errors.FeatureMismatchError):
        fitted.adapt(np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(errors.InputError, match="classes"):
        fitted.adapt(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(errors.LabelLengthError):
        fitted.adapt(X, [0, 1])
    with pytest.raises(errors.ParameterError, match="init"):
        fitted.adapt(X, [0, 1, 0, 1], init="pretrained")
    with pytest.raises(errors.ParameterError, match="inner_lr"):
        MAML(inner_lr=-1).fit(moons)
    with pytest.raises(errors.ParameterError, match="batch_size"):
        MAML(trainer_params={"batch_size": 8}).fit(moons)
    with pytest.raises(errors.ParameterError, match="outputs"):
        MAML(model=nn.Linear(2, 3)).fit(moons)
    assert issubclass(errors.ParameterError, ValueError)


def test_string_labels_in_adapt(fitted, moons):
    Xs, ys, Xq, yq = moons.sample(1, rng=0)[0]
    names = np.array(["lower", "upper"])  # sorted: lower -> output 0
    model = fitted.adapt(Xs, names[ys], steps=5)
    assert set(model.predict(Xq)) <= {"lower", "upper"}
    assert list(model.classes_) == ["lower", "upper"]


def test_custom_module_goes_through_vmap(moons):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 16), nn.Linear(16, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    m = MAML(model=Net(), epochs=1, steps_per_epoch=10, random_state=0).fit(moons)
    task = moons.sample(1, rng=0)[0]
    assert m.adapt(task.X_support, task.y_support).predict(task.X_query).shape == (30,)


def test_maml_regression_on_sinusoids():
    sampler = SinusoidTasks(shots=10, query=20)
    m = MAML(epochs=4, steps_per_epoch=50, inner_lr=0.01, inner_steps=1, random_state=0)
    m.fit(sampler)
    tasks = SinusoidTasks(shots=10, query=50).sample(50, rng=7)
    scores = m.evaluate(tasks, steps=[0, 5])
    assert scores.shape == (50, 2) and scores[:, 1].mean() > scores[:, 0].mean()
    model = m.adapt(tasks[0].X_support, tasks[0].y_support)
    assert model.predict(tasks[0].X_query).shape == (50,)
    with pytest.raises(errors.InputError):
        model.predict_proba(tasks[0].X_query)


def test_maml_save_and_load_round_trip(fitted, moons, tmp_path):
    tasks = moons.held_out_sampler().sample(5, rng=0)
    tk.io.save(fitted, tmp_path / "maml")
    loaded = tk.load(tmp_path / "maml")
    np.testing.assert_allclose(loaded.evaluate(tasks, steps=[0, 5]),
                               fitted.evaluate(tasks, steps=[0, 5]))


def test_draw_adaptation_grid(fitted, moons):
    tasks = moons.tasks_at([60, -120], rng=0)
    fig = draw_adaptation_grid(fitted, tasks, steps=(0, 5), titles=["60°", "-120°"])
    assert len(fig.axes) == 8
    assert "MAML init, 5 steps" in fig.axes[1 * 2].get_title()


# ---------------------------------------------------------------------------- ProtoNet
def test_prototype_logits_are_negative_squared_distances_to_class_means():
    g = torch.Generator().manual_seed(0)
    zs, zq = torch.randn(2, 9, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    ys = torch.tensor([[0, 1, 2] * 3, [2, 2, 1, 1, 0, 0, 0, 1, 2]])
    out = prototype_logits(zs, ys, zq, 3)
    for t in range(2):
        protos = torch.stack([zs[t][ys[t] == k].mean(0) for k in range(3)])
        torch.testing.assert_close(out[t], -torch.cdist(zq[t], protos) ** 2, rtol=1e-5,
                                   atol=1e-5)


def test_protonet_learns_a_metric_on_digits():
    """5-way 5-shot digits; episodes on unseen images (chance is 0.2)."""
    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:900], perm[900:]
    train = ArrayTasks(X[tr], y[tr], n_ways=5, shots=5, query=15)
    tasks = ArrayTasks(X[te], y[te], n_ways=5, shots=5, query=15).sample(100, rng=1)
    net = ProtoNet(epochs=3, steps_per_epoch=50, random_state=0).fit(train)
    untrained = ProtoNet(epochs=1, steps_per_epoch=1, lr=1e-12, random_state=0).fit(train)
    acc = net.evaluate(tasks).mean()
    assert acc > 0.9 and acc > untrained.evaluate(tasks).mean() + 0.1
    assert net.history_["loss"][-1] < net.history_["loss"][0]
    t = tasks[0]
    pred = net.predict(t.X_query, support=(t.X_support, t.y_support))
    assert np.mean(pred == t.y_query) == pytest.approx(net.evaluate(tasks[:1])[0])
    names = np.array(list("abcde"))
    clf = net.adapt(t.X_support, names[t.y_support])
    assert list(clf.classes_) == list("abcde")
    assert clf.score(t.X_query, names[t.y_query]) == pytest.approx(np.mean(pred == t.y_query))
    np.testing.assert_allclose(clf.predict_proba(t.X_query).sum(1), 1.0, rtol=1e-6)
    with pytest.raises(errors.InputError, match="support"):
        net.predict(t.X_query)
    assert clone(net).get_params().keys() == net.get_params().keys()


def test_protonet_rejects_regression_samplers():
    with pytest.raises(errors.InputError, match="regression"):
        ProtoNet(epochs=1, steps_per_epoch=1).fit(SinusoidTasks())
