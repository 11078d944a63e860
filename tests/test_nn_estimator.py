import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from transferkit.datasets import make_covariate_shift, make_two_moons_shift
from transferkit.errors import InputError, NotFittedError
from transferkit.nn import MLPClassifier, MLPRegressor, TorchEstimator, Trainer


def test_mlp_learns_two_moons_and_is_reproducible():
    Xs, ys, _, _ = make_two_moons_shift()
    a = MLPClassifier(hidden_layer_sizes=(10, 10), epochs=300, lr=1e-2, random_state=0)
    a.fit(Xs, ys)
    b = clone(a).fit(Xs, ys)
    assert a.score(Xs, ys) > 0.95
    np.testing.assert_array_equal(a.predict_proba(Xs), b.predict_proba(Xs))
    c = clone(a).set_params(random_state=1).fit(Xs, ys)
    assert not np.array_equal(a.predict_proba(Xs), c.predict_proba(Xs))


def test_sample_weight_is_a_weighted_loss():
    # Two contradicting copies of the same points: the weights decide which labels win.
    X = np.random.default_rng(0).normal(size=(40, 2))
    X2 = np.vstack([X, X])
    y2 = np.r_[np.zeros(40), np.ones(40)]
    w = np.r_[np.full(40, 5.0), np.full(40, 0.2)]
    m = MLPClassifier(hidden_layer_sizes=(8,), epochs=100, random_state=0)
    assert (m.fit(X2, y2, sample_weight=w).predict(X) == 0).all()
    assert (m.fit(X2, y2, sample_weight=w[::-1]).predict(X) == 1).all()


def test_user_module_is_copied_and_trained_with_logits():
    Xs, ys, _, _ = make_two_moons_shift()
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    before = [p.detach().clone() for p in net.parameters()]
    m = TorchEstimator(module=net, epochs=200, lr=1e-2, random_state=0).fit(Xs, ys)
    assert m.score(Xs, ys) > 0.9
    for p, q in zip(before, net.parameters()):
        assert torch.equal(p, q)  # the user's module is not trained in place
    with pytest.raises(InputError, match="outputs"):
        TorchEstimator(module=nn.Linear(2, 3), epochs=1).fit(Xs, ys)


def test_regression_and_multiclass():
    Xs, ys, Xt, yt = make_covariate_shift(n_source=400, task="regression")
    r = MLPRegressor(hidden_layer_sizes=(32,), epochs=100, random_state=0).fit(Xs, ys)
    assert r.score(Xs, ys) > 0.8
    X = np.random.default_rng(0).normal(size=(300, 2))
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    c = MLPClassifier(epochs=60, random_state=0).fit(X, y)
    assert c.predict_proba(X).shape == (300, 3) and c.score(X, y) > 0.9


def test_batch_larger_than_data_still_trains_and_threads_are_restored():
    X = np.random.default_rng(0).normal(size=(5, 2))
    y = np.array([0, 1, 0, 1, 1])
    threads = torch.get_num_threads()
    m = MLPClassifier(epochs=5, batch_size=1000, random_state=0).fit(X, y)
    assert len(m.history_["loss"]) == 5 and np.isfinite(m.history_["loss"]).all()
    assert m.history_["loss"][-1] < m.history_["loss"][0]
    assert torch.get_num_threads() == threads


def test_trainer_rejects_unknown_optimizer_and_errors_are_clear():
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(optimizer="lbfgs").make_optimizer([nn.Parameter(torch.zeros(1))])
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((1, 2)))
    with pytest.raises(InputError, match="sample_weight"):
        MLPClassifier(epochs=1).fit(np.zeros((4, 2)), [0, 1, 0, 1], sample_weight=[1, 1, -1, 1])
