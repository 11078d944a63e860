"""TrAdaBoost, TrAdaBoost.R2 and two-stage TrAdaBoost.R2: transfer gains, weights, contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs, make_moons
from sklearn.dummy import DummyClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from transferkit.datasets import make_covariate_shift, make_two_moons_shift
from transferkit.errors import (
    InputError,
    MissingTargetLabelsError,
    ParameterError,
    UnsupportedTaskError,
)
from transferkit.instance.tradaboost import (
    TrAdaBoost,
    TrAdaBoostR2,
    TwoStageTrAdaBoostR2,
    _shift_to_target,
)
from transferkit.registry import get_method


def _partial(yt: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    out = np.full(len(yt), np.nan)
    out[labelled] = yt[labelled]
    return out


def _moons_task(seed: int, n_labelled: int = 15):
    """Two moons rotated by 50°: the source boundary is wrong on much of the target."""
    Xs, ys, Xt, yt = make_two_moons_shift(n_samples=300, rotation=50, noise=0.1,
                                          random_state=seed)
    perm = np.random.default_rng(seed).permutation(len(yt))
    return Xs, ys, Xt, yt, perm[:n_labelled], perm[n_labelled:]


def _f(X: np.ndarray) -> np.ndarray:
    return np.sin(3 * X[:, 0]) + np.cos(2 * X[:, 1])


def _regression_task(seed: int, n_labelled: int = 20):
    """Target = source function + 0.6·x0 and a shifted input distribution."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(300, 2))
    ys = _f(Xs) + 0.1 * rng.normal(size=300)
    Xt = 0.8 * rng.normal(size=(400, 2)) + 0.3
    yt = _f(Xt) + 0.6 * Xt[:, 0] + 0.1 * rng.normal(size=400)
    return Xs, ys, Xt, yt, np.arange(n_labelled), np.arange(n_labelled, 400)


# --------------------------------------------------------------------------- transfer helps
def test_tradaboost_beats_target_only_and_source_only():
    scores = []
    for seed in range(5):
        Xs, ys, Xt, yt, lab, test = _moons_task(seed)
        model = TrAdaBoost(n_estimators=20, random_state=seed).fit(Xs, ys, Xt, _partial(yt, lab))
        tree = DecisionTreeClassifier(max_depth=3, random_state=0)  # the default base learner
        target_only = clone(tree).fit(Xt[lab], yt[lab]).score(Xt[test], yt[test])
        source_only = clone(tree).fit(Xs, ys).score(Xt[test], yt[test])
        scores.append((model.score(Xt[test], yt[test]), target_only, source_only))
    tr, tgt, src = np.mean(scores, axis=0)
    # measured: TrAdaBoost 0.95, target-only 0.78, source-only 0.81
    assert tr > tgt + 0.08 and tr > src + 0.08, scores


@pytest.mark.parametrize("cls", [TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_regression_transfer_beats_target_only_and_source_only(cls):
    params = {"n_steps": 5, "cv": 3} if cls is TwoStageTrAdaBoostR2 else {}
    scores = []
    for seed in range(5):
        Xs, ys, Xt, yt, lab, test = _regression_task(seed)
        model = cls(random_state=seed, **params).fit(Xs, ys, Xt, _partial(yt, lab))
        tree = DecisionTreeRegressor(max_depth=3, random_state=0)
        target_only = clone(tree).fit(Xt[lab], yt[lab]).score(Xt[test], yt[test])
        source_only = clone(tree).fit(Xs, ys).score(Xt[test], yt[test])
        scores.append((model.score(Xt[test], yt[test]), target_only, source_only))
    tr, tgt, src = np.mean(scores, axis=0)
    # measured R²: TrAdaBoostR2 0.59, two-stage 0.61; target-only 0.32, source-only 0.44
    assert tr > tgt + 0.1 and tr > src + 0.08, scores


# --------------------------------------------------------------------------- weights
def test_contradicting_source_samples_lose_weight_classification():
    for seed in range(3):
        Xs, ys = make_moons(300, noise=0.1, random_state=seed)
        flip = np.random.default_rng(seed).random(300) < 0.2  # these contradict the target
        ys = np.where(flip, 1 - ys, ys)
        Xt, yt = make_moons(200, noise=0.1, random_state=100 + seed)
        model = TrAdaBoost(n_estimators=20, random_state=seed)
        model.fit(Xs, ys, Xt, _partial(yt, np.arange(20)))
        w = model.weights_[:300]
        assert model.weights_.shape == (320,) and np.isclose(model.weights_.sum(), 1.0)
        assert w[flip].mean() < 0.4 * w[~flip].mean()  # measured ratios 0.05-0.16


def test_contradicting_source_samples_lose_weight_regression():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(300, 2))
    ys = _f(Xs) + 0.1 * rng.normal(size=300)
    bad = rng.random(300) < 0.2
    ys[bad] += 2.0  # a different task for these source samples
    Xt = rng.normal(size=(200, 2))
    yt = _f(Xt)
    model = TrAdaBoostR2(random_state=0).fit(Xs, ys, Xt, _partial(yt, np.arange(20)))
    w = model.weights_[:300]
    assert w[bad].mean() < 0.4 * w[~bad].mean()  # measured 0.22


def test_dynamic_factor_keeps_more_source_weight():
    Xs, ys, Xt, yt, lab, _ = _moons_task(0)
    plain = TrAdaBoost(n_estimators=10, random_state=0).fit(Xs, ys, Xt, _partial(yt, lab))
    dyn = TrAdaBoost(n_estimators=10, dynamic=True, random_state=0)
    dyn.fit(Xs, ys, Xt, _partial(yt, lab))
    assert dyn.weights_[:300].sum() >= plain.weights_[:300].sum()


def test_shift_to_target_reaches_fraction_and_drops_worst_sources_first():
    w = np.full(6, 1 / 6)
    e = np.array([0.0, 0.5, 1.0, 1.0, 0.2, 0.9])  # 4 source rows, then 2 target rows
    out = _shift_to_target(w, e, 4, 0.6)
    assert np.isclose(out.sum(), 1.0) and np.isclose(out[4:].sum(), 0.6)
    assert out[0] > out[1] > out[2] and np.isclose(out[2], out[3])
    assert np.allclose(_shift_to_target(w, e, 4, 1.0)[:4], 0.0)


def test_two_stage_records_its_schedule():
    Xs, ys, Xt, yt, lab, _ = _regression_task(0)
    m = TwoStageTrAdaBoostR2(n_estimators=3, n_steps=4, cv=3, random_state=0)
    m.fit(Xs, ys, Xt, _partial(yt, lab))
    assert m.cv_errors_.shape == (4,) and m.best_step_ == int(np.argmin(m.cv_errors_))
    assert np.isclose(m.target_fractions_[0], 20 / 320) and m.target_fractions_[-1] == 1.0
    assert len(m.estimators_) == 3 and np.isclose(m.weights_.sum(), 1.0)
    # AdaBoost.R2' keeps the chosen step's source/target balance
    assert np.isclose(m.weights_[300:].sum(), m.target_fractions_[m.best_step_])


# --------------------------------------------------------------------------- edge cases
def test_target_error_at_or_above_half_gives_zero_vote_and_still_predicts():
    Xs, ys = make_blobs([45, 15], centers=[[-2, 0], [2, 0]], random_state=0)
    Xt = Xs[:20] + 0.1
    yt = np.ones(20)  # the majority-class learner, ruled by the source, says 0: error 1
    m = TrAdaBoost(DummyClassifier(strategy="most_frequent"), n_estimators=4)
    m.fit(Xs, ys, Xt, _partial(yt, np.arange(10)))
    assert np.all(m.errors_ >= 0.5) and np.all(m.estimator_weights_ == 0)
    proba = m.predict_proba(Xt)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(1), 1.0)


def test_perfect_target_fit_gives_finite_vote():
    Xs, ys = make_blobs(80, centers=[[-3, 0], [3, 0]], cluster_std=0.5, random_state=1)
    m = TrAdaBoost(n_estimators=4, random_state=0).fit(Xs, ys, Xs, _partial(ys, np.arange(10)))
    assert np.all(m.errors_ == 0) and np.all(np.isfinite(m.estimator_weights_))
    assert m.score(Xs, ys) == 1.0


def test_multiclass_string_labels_round_trip():
    X, y = make_blobs(240, centers=3, random_state=0)
    names = np.array(["cat", "dog", "eel"], dtype=object)[y]
    Xs, ys, Xt = X[:160], names[:160], X[160:] + 0.3
    yt = np.array([names[160 + i] if i < 15 else None for i in range(80)], dtype=object)
    m = TrAdaBoost(n_estimators=6, random_state=0).fit(Xs, ys, Xt, yt)
    pred = m.predict(Xt)
    assert set(pred) <= {"cat", "dog", "eel"} and list(m.classes_) == ["cat", "dog", "eel"]
    proba = m.predict_proba(Xt)
    assert proba.shape == (80, 3) and np.allclose(proba.sum(1), 1.0)
    assert np.array_equal(m.classes_[proba.argmax(1)], pred)
    assert m.score(Xt, names[160:]) > 0.9


@pytest.mark.parametrize("cls", [TrAdaBoost, TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_needs_labelled_target(cls):
    task = "classification" if cls is TrAdaBoost else "regression"
    Xs, ys, Xt, _ = make_covariate_shift(60, 30, task=task)
    with pytest.raises(MissingTargetLabelsError):
        cls().fit(Xs, ys, Xt)
    with pytest.raises(MissingTargetLabelsError):
        cls().fit(Xs, ys, Xt, np.full(30, np.nan))


def test_wrong_task_and_bad_parameters_raise():
    Xs, ys, Xt, yt = make_covariate_shift(60, 30, task="regression")
    yp = _partial(yt, np.arange(5))
    with pytest.raises(UnsupportedTaskError):
        TrAdaBoost().fit(Xs, ys, Xt, yp)
    Xc, yc, Xtc, ytc = make_covariate_shift(60, 30)
    with pytest.raises(UnsupportedTaskError):
        TrAdaBoostR2().fit(Xc, yc, Xtc, _partial(ytc.astype(float), np.arange(5)))
    with pytest.raises(ParameterError):
        TrAdaBoostR2(loss="huber").fit(Xs, ys, Xt, yp)
    with pytest.raises(ParameterError):
        TrAdaBoost(n_estimators=0).fit(Xc, yc, Xtc, _partial(ytc.astype(float), np.arange(5)))
    with pytest.raises(InputError):  # cross-validation needs two labelled target samples
        TwoStageTrAdaBoostR2().fit(Xs, ys, Xt, _partial(yt, np.arange(1)))


@pytest.mark.parametrize("cls", [TrAdaBoost, TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_deterministic_under_random_state(cls):
    task = "classification" if cls is TrAdaBoost else "regression"
    Xs, ys, Xt, yt = make_covariate_shift(150, 80, task=task, random_state=3)
    yp = _partial(yt.astype(float), np.arange(12))
    params = {"n_steps": 3, "cv": 3, "n_estimators": 4} if cls is TwoStageTrAdaBoostR2 else {}
    # max_features=1 makes the trees depend on their seed
    base = (DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor)(
        max_depth=3, max_features=1)
    a = cls(base, random_state=7, **params).fit(Xs, ys, Xt, yp)
    b = cls(base, random_state=7, **params).fit(Xs, ys, Xt, yp)
    assert np.array_equal(a.predict(Xt), b.predict(Xt))
    assert np.array_equal(a.weights_, b.weights_) and np.array_equal(a.errors_, b.errors_)


def test_sklearn_params_and_registry():
    m = TrAdaBoost(n_estimators=5, dynamic=True)
    assert clone(m).get_params()["n_estimators"] == 5 and clone(m).get_params()["dynamic"]
    for name, tasks in [("TrAdaBoost", ("classification",)), ("TrAdaBoostR2", ("regression",)),
                        ("TwoStageTrAdaBoostR2", ("regression",))]:
        info = get_method(name)
        assert info.family == "instance" and info.tasks == tasks and info.needs_target_labels
        assert info.settings == ("semi-supervised", "supervised")
    assert get_method("TrAdaBoost").summary.startswith("Transfer AdaBoost for classification")


def test_torch_module_as_base_learner():
    torch = pytest.importorskip("torch")
    Xs, ys, Xt, yt, lab, test = _moons_task(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    m = TrAdaBoost(net, n_estimators=2, random_state=0)
    m.fit(Xs, ys, Xt, _partial(yt, lab), epochs=3)
    assert len(m.estimators_) == 2 and m.predict(Xt[test]).shape == (len(test),)
