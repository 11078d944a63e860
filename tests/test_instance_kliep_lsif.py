"""KLIEP, uLSIF and RULSIF: accuracy against the true ratio, optimality, model selection."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from transferkit import errors
from transferkit.datasets import make_covariate_shift, make_two_moons_shift
from transferkit.instance._kernels import gaussian_kernel, median_distance
from transferkit.instance.kliep import KLIEP, kliep_solve
from transferkit.instance.lsif import RULSIF, ULSIF, _loo_scores
from transferkit.registry import get_method

METHODS = (KLIEP, ULSIF, RULSIF)


def _shift(d: int, n: int = 2000):
    Xs, _, Xt, _, ratio = make_covariate_shift(n_source=n, n_target=n, n_features=d,
                                               return_ratio=True, random_state=0)
    return Xs, Xt, ratio


@pytest.fixture(scope="module")
def fitted():
    """Each method fitted once per dimension with default hyper-parameters."""
    out = {}
    for d in (2, 10):
        Xs, Xt, ratio = _shift(d)
        for cls in METHODS:
            m = cls(random_state=0)
            out[cls.__name__, d] = (m, m.fit_weights(Xs, Xt), Xs, ratio)
    return out


# ----------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("d,threshold", [(2, 0.9), (10, 0.85)])
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_weights_rank_like_the_true_ratio(fitted, cls, d, threshold):
    m, w, Xs, ratio = fitted[cls.__name__, d]
    assert w.shape == (len(Xs),)
    assert np.all(w >= 0) and np.isfinite(w).all()
    np.testing.assert_allclose(w.mean(), 1.0)
    rho = spearmanr(w, ratio(Xs))[0]
    assert rho >= threshold, rho


@pytest.mark.parametrize("d,threshold", [(2, 0.9), (10, 0.85)])
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_predict_weights_on_fresh_target_points(fitted, cls, d, threshold):
    m, w, Xs, ratio = fitted[cls.__name__, d]
    X_new = make_covariate_shift(n_source=2, n_target=1000, n_features=d, random_state=1)[2]
    pred = m.predict_weights(X_new)
    assert pred.shape == (1000,) and np.all(pred >= 0)
    assert spearmanr(pred, ratio(X_new))[0] >= threshold
    # at the source points predict_weights reproduces weights_
    np.testing.assert_allclose(m.predict_weights(Xs[:50]), w[:50], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- KLIEP optimality
def _kliep_terms(m: KLIEP, Xs, Xt, alpha):
    Kt = gaussian_kernel(Xt, m.centers_, m.sigma_)
    ks_mean = gaussian_kernel(Xs, m.centers_, m.sigma_).mean(axis=0)
    r = Kt @ alpha
    objective = np.mean(np.log(r))
    grad = (Kt / r[:, None]).mean(axis=0) / ks_mean  # gradient in beta = alpha * ks_mean
    return objective, grad, ks_mean


def test_kliep_converges_to_the_constrained_optimum():
    Xs, Xt, _ = _shift(2, n=800)
    m = KLIEP(random_state=0)
    m.fit_weights(Xs, Xt)
    f, grad, ks_mean = _kliep_terms(m, Xs, Xt, m.alpha_)
    beta = m.alpha_ * ks_mean
    # constraint: mean_s w(x_s) = 1, alpha >= 0
    np.testing.assert_allclose(beta.sum(), 1.0, rtol=1e-10)
    assert np.all(m.alpha_ >= 0)
    # better than the uniform starting point (a one-step solver would barely move)
    f0, _, _ = _kliep_terms(m, Xs, Xt, np.full(len(beta), 1.0 / len(beta)) / ks_mean)
    assert f > f0 + 1e-2
    # KKT on the simplex: every gradient entry <= 1 (which bounds the gap to the optimum
    # by max(grad) - 1), with equality on the support
    assert grad.max() - 1 <= 1e-5
    active = beta > 1e-3
    assert active.any()
    np.testing.assert_allclose(grad[active], 1.0, atol=1e-3)
    assert m.n_iter_ >= 2


def test_kliep_solver_matches_a_long_multiplicative_run():
    rng = np.random.default_rng(0)
    A = np.exp(-rng.random((300, 20)) * 4)
    beta, n_iter, gap = kliep_solve(A, tol=1e-9)
    assert gap <= 1e-9 and n_iter < 50
    ref = np.full(20, 1 / 20)
    for _ in range(20000):  # EM / multiplicative updates: slow but monotone
        ref *= (A / (A @ ref)[:, None]).mean(axis=0)
    f, f_ref = np.mean(np.log(A @ beta)), np.mean(np.log(A @ ref))
    assert f >= f_ref - 1e-9
    np.testing.assert_allclose(beta.sum(), 1.0)


def test_kliep_warns_when_stopped_early():
    Xs, Xt, _ = _shift(2, n=400)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = KLIEP(sigmas=0.5, random_state=0)
        m.fit_weights(Xs, Xt)
    early = KLIEP(sigmas=0.5, max_iter=1, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        early.fit_weights(Xs, Xt)
    assert _kliep_terms(early, Xs, Xt, early.alpha_)[0] < _kliep_terms(m, Xs, Xt, m.alpha_)[0]


def test_kliep_cross_validation_prefers_a_sensible_width():
    Xs, Xt, _ = _shift(2, n=600)
    m = KLIEP(sigmas=[0.01, 0.5, 100.0], random_state=0)
    m.fit_weights(Xs, Xt)
    assert set(m.cv_scores_) == {0.01, 0.5, 100.0}
    assert m.sigma_ == 0.5
    assert max(m.cv_scores_, key=m.cv_scores_.get) == m.sigma_
    assert m.centers_.shape == (100, 2) and m.alpha_.shape == (100,)


# ----------------------------------------------------------------------------- LSIF
def test_loo_closed_form_equals_refitting():
    rng = np.random.default_rng(0)
    lambdas = np.array([1e-3, 0.1, 1.0])
    for alpha, (n_s, n_t) in [(0.0, (30, 25)), (0.1, (20, 35)), (0.5, (25, 25))]:
        Ps, Pt = rng.random((n_s, 7)), rng.random((n_t, 7)) ** 2
        brute = []
        for lam in lambdas:
            losses = []
            for i in range(min(n_s, n_t)):
                ps, pt = np.delete(Ps, i, 0), np.delete(Pt, i, 0)
                H = (1 - alpha) * ps.T @ ps / len(ps) + alpha * pt.T @ pt / len(pt)
                theta = np.maximum(np.linalg.solve(H + lam * np.eye(7), pt.mean(0)), 0)
                ws, wt = Ps[i] @ theta, Pt[i] @ theta
                losses.append(alpha / 2 * wt**2 + (1 - alpha) / 2 * ws**2 - wt)
            brute.append(np.mean(losses))
        np.testing.assert_allclose(_loo_scores(Ps, Pt, alpha, lambdas), brute, rtol=1e-9)


def test_ulsif_width_follows_the_data_scale():
    Xs, Xt, _ = _shift(2, n=600)
    grid = np.logspace(-2, 2, 17)  # 4 per decade: 10x any inner point is on the grid
    m1 = ULSIF(sigmas=grid, random_state=0)
    m1.fit_weights(Xs, Xt)
    m10 = ULSIF(sigmas=grid, random_state=0)
    m10.fit_weights(10 * Xs, 10 * Xt)
    np.testing.assert_allclose(m10.sigma_, 10 * m1.sigma_, rtol=1e-9)
    assert m1.lambda_ == m10.lambda_
    med = median_distance(Xs, Xt)
    assert 0.1 * med <= m1.sigma_ <= 2 * med
    assert len(m1.loo_scores_) == 17 * 11
    assert min(m1.loo_scores_, key=m1.loo_scores_.get) == (m1.sigma_, m1.lambda_)


def test_ulsif_is_rulsif_with_alpha_zero():
    Xs, Xt, _ = _shift(3, n=300)
    u = ULSIF(random_state=0)
    r = RULSIF(alpha=0.0, random_state=0)
    np.testing.assert_allclose(u.fit_weights(Xs, Xt), r.fit_weights(Xs, Xt))
    assert u.alpha_ is u.theta_
    np.testing.assert_allclose(u.theta_, r.theta_)


def test_rulsif_estimates_the_bounded_relative_ratio():
    Xs, Xt, ratio = _shift(2, n=1000)
    alpha = 0.5
    m = RULSIF(alpha=alpha, random_state=0)
    m.fit_weights(Xs, Xt)
    raw = gaussian_kernel(Xs, m.centers_, m.sigma_) @ m.theta_  # before normalisation
    true_rel = ratio(Xs) / (alpha * ratio(Xs) + 1 - alpha)
    assert raw.max() <= 1.2 / alpha
    assert np.median(np.abs(raw - true_rel)) < 0.15
    assert spearmanr(raw, true_rel)[0] >= 0.9


# ----------------------------------------------------------------------------- estimator API
@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_deterministic_non_negative_and_registered(cls):
    Xs, Xt, _ = _shift(2, n=300)
    w1 = cls(random_state=3).fit_weights(Xs, Xt)
    w2 = cls(random_state=3).fit_weights(Xs, Xt)
    np.testing.assert_array_equal(w1, w2)
    assert np.all(w1 >= 0)
    info = get_method(cls.__name__)
    assert info.cls is cls and info.family == "instance"
    assert info.summary == cls.__doc__.strip().splitlines()[0]
    m = cls(random_state=0)
    assert clone(m).get_params() == m.get_params()


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_predict_weights_before_fit_raises(cls):
    with pytest.raises(errors.NotFittedError):
        cls().predict_weights(np.zeros((3, 2)))


@pytest.mark.parametrize("params", [{"sigmas": [-1.0]}, {"sigmas": []}, {"n_centers": 0},
                                    {"cv": 1}, {"tol": 0}, {"max_iter": 0}])
def test_kliep_rejects_bad_hyper_parameters(params):
    Xs, Xt, _ = _shift(2, n=50)
    with pytest.raises(errors.TransferkitError):
        KLIEP(**params).fit_weights(Xs, Xt)


@pytest.mark.parametrize("params", [{"alpha": 1.0}, {"alpha": -0.1}, {"lambdas": [0.0]},
                                    {"sigmas": [np.inf]}, {"n_centers": 1.5}])
def test_rulsif_rejects_bad_hyper_parameters(params):
    Xs, Xt, _ = _shift(2, n=50)
    with pytest.raises(errors.TransferkitError):
        RULSIF(**params).fit_weights(Xs, Xt)


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_a_width_that_reaches_no_source_point_is_a_clear_error(cls):
    Xs, Xt, _ = _shift(5, n=100)
    with pytest.raises(errors.InputError, match="larger sigmas"):
        cls(sigmas=1e-3, random_state=0).fit_weights(Xs, Xt)
    # among several candidates, selection simply avoids it
    w = cls(sigmas=[1e-3, 1.0], random_state=0).fit_weights(Xs, Xt)
    assert np.isfinite(w).all() and w.max() > 0


def test_kliep_on_two_moons_with_the_seed_widths():
    Xs, ys, Xt, yt = make_two_moons_shift()
    m = KLIEP(sigmas=[0.1, 1, 10], random_state=0).fit(Xs, ys, Xt)
    assert m.weights_.shape == (100,)
    assert m.sigma_ in (0.1, 1.0, 10.0)
    assert 0.0 <= m.score(Xt, yt) <= 1.0


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.__name__)
def test_semi_supervised_fit_and_more_centres_than_targets(cls):
    Xs, ys, Xt, yt = make_covariate_shift(n_source=80, n_target=30, random_state=0)
    y_partial = np.full(len(yt), np.nan)
    y_partial[:5] = yt[:5]
    m = cls(n_centers=500, random_state=0).fit(Xs, ys, Xt, y_partial)
    assert m.weights_.shape == (80,)
    assert m.predict(Xt).shape == (30,)
