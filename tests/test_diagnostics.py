"""Shift diagnostics: MMD test power and level, PAD, sliced Wasserstein, drift, BBSE."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transferkit.diagnostics import (
    ShiftReport,
    ben_david_bound,
    coral_distance,
    diagnose,
    drift_ranking,
    estimate_label_shift,
    mmd_test,
    proxy_a_distance,
    sliced_wasserstein,
)
from transferkit.errors import FeatureMismatchError, InputError, NonFiniteInputError, ParameterError


def _shifted(n=2000, d=20, shift=0.2, col=7, seed=0):
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    Xt[:, col] += shift
    return Xs, Xt


def test_mmd_rejects_small_mean_shift_and_drift_ranks_it_first():
    Xs, Xt = _shifted()
    res = mmd_test(Xs, Xt, n_permutations=200, random_state=1)
    assert res.estimator == "quadratic"
    assert res.p_value < 0.05
    assert drift_ranking(Xs, Xt)[0]["feature"] == 7


def _false_alarms(reps, n=300, d=5, n_permutations=100):
    hits = 0
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        res = mmd_test(rng.normal(size=(n, d)), rng.normal(size=(n, d)),
                       n_permutations=n_permutations, random_state=r)
        hits += res.p_value < 0.05
    return hits / reps


def test_mmd_keeps_level_fast():
    assert _false_alarms(30) <= 0.15


@pytest.mark.slow
def test_mmd_keeps_level_100_repetitions():
    # the acceptance setting: n = 2000 per domain, d = 20, 200 permutations, no shift
    assert _false_alarms(100, n=2000, d=20, n_permutations=200) <= 0.10  # P(>10) < 1%


def test_mmd_block_estimator_power_and_level():
    Xs, Xt = _shifted(n=3000, d=10, shift=0.3)
    res = mmd_test(Xs, Xt, estimator="block", block_size=300, n_permutations=100)
    assert res.estimator == "block" and res.block_size == 300
    assert res.p_value < 0.05
    rng = np.random.default_rng(3)
    null = mmd_test(rng.normal(size=(3000, 10)), rng.normal(size=(2500, 10)), estimator="block",
                    block_size=300, n_permutations=100)
    assert null.p_value > 0.01 and 0 < null.p_value <= 1


def test_mmd_auto_switches_to_block_for_large_n():
    rng = np.random.default_rng(0)
    res = mmd_test(rng.normal(size=(400, 3)), rng.normal(size=(400, 3)), max_quadratic=500,
                   n_permutations=20)
    assert res.estimator == "block"


def test_mmd_statistic_matches_direct_unbiased_formula():
    from transferkit.instance._kernels import gaussian_kernel

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 3)), rng.normal(0.5, 1, size=(30, 3))
    res = mmd_test(X, Y, sigma=1.5, n_permutations=10)
    Kxx, Kyy, Kxy = (gaussian_kernel(a, b, 1.5) for a, b in ((X, X), (Y, Y), (X, Y)))
    direct = ((Kxx.sum() - 40) / (40 * 39) + (Kyy.sum() - 30) / (30 * 29)
              - 2 * Kxy.mean())
    assert res.statistic == pytest.approx(direct, rel=1e-10)


def test_pad_near_zero_for_same_and_two_for_disjoint():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    assert proxy_a_distance(X, rng.normal(size=(600, 5))) < 0.2
    assert proxy_a_distance(X, X + 10.0) > 1.95


@pytest.mark.parametrize("n, m", [(200, 200), (137, 251)])
def test_sliced_wasserstein_equals_exact_1d(n, m):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(n, 1)), rng.exponential(2.0, size=(m, 1))
    assert sliced_wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a[:, 0], b[:, 0]),
                                                     rel=1e-12)


def test_sliced_wasserstein_translation_and_coral():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    assert sliced_wasserstein(X, X) == pytest.approx(0.0, abs=1e-12)
    # translating by t moves each projection by θᵀt: SW_2² = E[(θᵀt)²] = |t|²/d
    t = np.array([1.0, 0, 0, 0])
    sw2 = sliced_wasserstein(X, X + t, p=2, n_projections=4000)
    assert sw2 == pytest.approx(0.5, rel=0.05)
    assert coral_distance(X, X + 3.0) == pytest.approx(0.0, abs=1e-12)
    assert coral_distance(X, 2 * X) > 0.1


def test_drift_ranking_dataframe_categorical():
    rng = np.random.default_rng(0)
    Xs = pd.DataFrame({"age": rng.normal(40, 10, 800), "city": rng.choice(list("abc"), 800),
                       "n_kids": rng.integers(0, 3, 800)})
    Xt = pd.DataFrame({"age": rng.normal(40, 10, 800),
                       "city": rng.choice(list("abc"), 800, p=[0.6, 0.2, 0.2]),
                       "n_kids": rng.integers(0, 3, 800)})
    ranking = drift_ranking(Xs, Xt)
    assert [r["feature"] for r in ranking][0] == "city"
    tests = {r["feature"]: r["test"] for r in ranking}
    assert tests == {"age": "ks", "city": "chi2", "n_kids": "chi2"}
    assert all({"feature", "statistic", "p_value"} <= set(r) for r in ranking)
    ps = [r["p_value"] for r in ranking]
    assert ps == sorted(ps)


def _label_shift_problem(n, priors, rng):
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = rng.choice(3, n, p=priors)
    return means[y] + rng.normal(size=(n, 2)), y


def test_bbse_recovers_target_priors():
    rng = np.random.default_rng(0)
    Xs, ys = _label_shift_problem(4000, [1 / 3, 1 / 3, 1 / 3], rng)
    Xt, _ = _label_shift_problem(4000, [0.6, 0.3, 0.1], rng)
    est = estimate_label_shift(Xs, ys, Xt)
    assert np.allclose(est["target_priors"], [0.6, 0.3, 0.1], atol=0.05)
    assert est["classes"] == [0, 1, 2]
    assert min(est["weights"]) >= 0


def test_bound_terms():
    rng = np.random.default_rng(0)
    Xs, ys = _label_shift_problem(600, [0.5, 0.3, 0.2], rng)
    b = ben_david_bound(Xs, ys, Xs + 20.0)
    assert b["half_d_H"] == pytest.approx(1.0, abs=0.03)
    assert b["source_error"] < 0.1
    assert b["bound_without_lambda"] == pytest.approx(b["source_error"] + b["half_d_H"])


def test_diagnose_report():
    Xs, Xt = _shifted(n=800, d=6, shift=0.5, col=2)
    ys = (Xs[:, 0] > 0).astype(int)
    yt = np.full(len(Xt), np.nan)
    yt[:50] = Xt[:50, 0] > 0
    rep = diagnose(Xs, Xt, ys, yt, n_permutations=100)
    assert isinstance(rep, ShiftReport)
    d = rep.to_dict()
    for key in ("drift", "mmd", "proxy_a_distance", "sliced_wasserstein", "coral_distance",
                "label_shift", "bound", "summary"):
        assert key in d
    assert set(d["mmd"]) >= {"statistic", "p_value", "n_permutations", "estimator"}
    assert d["drift"][0]["feature"] == 2 and d["shift_detected"]
    assert "observed_target_priors" in d["label_shift"]
    json.dumps(d)
    text = str(rep)
    assert "Shift report" in text and "proxy A-distance" in text and "BBSE" in text
    assert "differ significantly" in d["summary"]


def test_diagnose_without_labels_and_with_dataframe():
    rng = np.random.default_rng(0)
    Xs = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["u", "v"], 200)})
    Xt = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["u", "v"], 200)})
    d = diagnose(Xs, Xt, n_permutations=50).to_dict()
    assert d["label_shift"] is None and d["bound"] is None
    assert {r["feature"] for r in d["drift"]} == {"x", "c"}
    assert "No significant shift" in d["summary"]


def test_clear_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    with pytest.raises(FeatureMismatchError):
        mmd_test(X, X[:, :2])
    with pytest.raises(FeatureMismatchError):
        drift_ranking(X, X[:, :2])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(NonFiniteInputError):
        sliced_wasserstein(X, bad)
    with pytest.raises(ParameterError):
        mmd_test(X, X, estimator="cubic")
    with pytest.raises(ParameterError):
        mmd_test(X, X, n_permutations=0)
    with pytest.raises(InputError):
        mmd_test(X, X[:1])
    with pytest.raises(InputError):
        estimate_label_shift(X, np.zeros(50), X)
    with pytest.raises(InputError):
        diagnose(X, X[:3])
