"""Shallow feature transfer: CORAL, SA, TCA, FA.

Each method is checked on the quantity it optimises (covariance distance, subspace
distance, MMD, the augmented layout) and on target accuracy against SourceOnly with the
same base estimator, on problems built with fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import transferkit as tk
from transferkit.baselines import SourceOnly
from transferkit.errors import ParameterError
from transferkit.feature import CORAL, FA, SA, TCA
from transferkit.feature.coral import coral_distance, covariance
from transferkit.instance._kernels import gaussian_kernel, median_distance, sq_dists


# ----------------------------------------------------------------------------- helpers
def mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    """Biased squared MMD with a Gaussian kernel of median-heuristic width.

    The width comes from the pooled sample of the representation itself, so the value
    does not depend on the scale of the features and representations can be compared.
    """
    sigma = median_distance(X, Y, random_state=0)
    return float(gaussian_kernel(X, X, sigma).mean() + gaussian_kernel(Y, Y, sigma).mean()
                 - 2 * gaussian_kernel(X, Y, sigma).mean())


def domain_accuracy(Zs: np.ndarray, Zt: np.ndarray) -> float:
    """Cross-validated accuracy of a 5-NN classifier telling source from target."""
    Z = np.vstack([Zs, Zt])
    d = np.r_[np.zeros(len(Zs)), np.ones(len(Zt))]
    return float(cross_val_score(KNeighborsClassifier(5), Z, d, cv=5).mean())


def standardize(Xs: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Z = np.vstack([Xs, Xt])
    mu, sd = Z.mean(0), Z.std(0)
    return (Xs - mu) / sd, (Xt - mu) / sd


def linear_distortion(seed: int, n: int = 400, d: int = 6):
    """Three Gaussian classes; the target is an independent sample mapped by x A + b."""
    rng = np.random.default_rng(seed)
    means = 1.5 * rng.normal(size=(3, d))
    y = rng.integers(0, 3, 2 * n)
    X = means[y] + rng.normal(size=(2 * n, d))
    A = np.eye(d) + 0.6 * rng.normal(size=(d, d))
    b = 2.0 * rng.normal(size=d)
    return X[:n], y[:n], X[n:] @ A + b, y[n:]


def correlated_gaussians(seed: int = 0, n: int = 2000, d: int = 5):
    """Source and target with different random covariances and means; labels by sign."""
    rng = np.random.default_rng(seed)
    Ls, Lt = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    Xs = rng.normal(size=(n, d)) @ Ls
    Xt = rng.normal(size=(n, d)) @ Lt + 3.0
    return Xs, (Xs[:, 0] > 0).astype(int), Xt, (Xt[:, 0] > 3.0).astype(int)


def tilted_star(seed: int, n: int = 300, d: int = 10, tilt: float = 0.15):
    """Three clusters on a plane in R^d; the target plane is tilted by ``tilt`` radians.

    The clusters sit at 120° from each other, so the in-plane covariance is isotropic and
    the in-plane PCA directions of each domain are set by sampling noise alone: PCA run
    per domain gives the two domains unrelated in-plane coordinates, which SA's
    ``M = P_sᵀ P_t`` must reconcile.
    """
    rng = np.random.default_rng(seed)
    B, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    Bs = B[:, :2]
    Bt = Bs.copy()
    Bt[:, 1] = np.cos(tilt) * B[:, 1] + np.sin(tilt) * B[:, 2]
    angles = np.radians([90, 210, 330])
    centres = 3.0 * np.c_[np.cos(angles), np.sin(angles)]

    def sample(basis):
        y = rng.integers(0, 3, n)
        Z = centres[y] + 0.5 * rng.normal(size=(n, 2))
        return Z @ basis.T + 0.05 * rng.normal(size=(n, d)), y

    Xs, ys = sample(Bs)
    Xt, yt = sample(Bt)
    return Xs, ys, Xt + 1.0, yt


# ----------------------------------------------------------------------------- CORAL
def test_coral_matches_target_covariance():
    Xs, ys, Xt, _ = correlated_gaussians()
    Ct = covariance(Xt)
    before = coral_distance(Xs, Xt)

    # Small λ: the transformed source covariance is the target's up to λ(I - AᵀA).
    m = CORAL(reg=1e-6).fit(Xs, ys, Xt)
    Zs = m.transform(Xs, domain="source")
    rel_err = np.linalg.norm(covariance(Zs) - Ct) / np.linalg.norm(Ct)
    assert rel_err < 1e-3
    assert coral_distance(Zs, Xt) < 1e-6 * before
    np.testing.assert_allclose(Zs.mean(0), Xt.mean(0), atol=1e-8)  # align_mean=True
    np.testing.assert_array_equal(m.transform(Xt), Xt)  # the target is left as it is

    # Any λ: the regularised covariances match exactly, and the CORAL distance shrinks
    # the more, the smaller λ. Measured factors: 110 (reg=0.01), 7.9 (0.1), 2.2 (reg=1,
    # the paper's setting: λ = 4.1 is large next to the source eigenvalues 0.11 and 0.23).
    shrink = []
    for reg, factor in ((0.01, 50), (0.1, 5), (1.0, 2)):
        m = CORAL(reg=reg).fit(Xs, ys, Xt)
        lam = m.lambda_
        np.testing.assert_allclose(lam, reg * (np.trace(covariance(Xs)) + np.trace(Ct)) / 10)
        np.testing.assert_allclose(m.A_.T @ (covariance(Xs) + lam * np.eye(5)) @ m.A_,
                                   Ct + lam * np.eye(5), rtol=1e-8, atol=1e-8)
        shrink.append(before / coral_distance(m.transform(Xs, "source"), Xt))
        assert shrink[-1] > factor
    assert shrink == sorted(shrink, reverse=True)


def test_coral_align_mean_false_is_the_papers_map_and_is_scale_equivariant():
    Xs, ys, Xt, _ = correlated_gaussians(seed=1, n=500)
    m = CORAL(align_mean=False).fit(Xs, ys, Xt)
    np.testing.assert_allclose(m.transform(Xs, "source"), Xs @ m.A_)
    m10 = CORAL().fit(10 * Xs, ys, 10 * Xt)
    np.testing.assert_allclose(m10.transform(10 * Xs, "source"),
                               10 * CORAL().fit(Xs, ys, Xt).transform(Xs, "source"),
                               rtol=1e-8, atol=1e-8)


def test_coral_beats_source_only_under_linear_distortion():
    src, coral = [], []
    for seed in range(5):
        Xs, ys, Xt, yt = linear_distortion(seed)
        src.append(SourceOnly(random_state=0).fit(Xs, ys, Xt).score(Xt, yt))
        coral.append(CORAL(random_state=0).fit(Xs, ys, Xt).score(Xt, yt))
    # measured: SourceOnly 0.673, CORAL 0.799 (mean of 5 seeds)
    assert np.mean(coral) > np.mean(src) + 0.08
    assert sum(c >= s for c, s in zip(coral, src)) >= 4


# ----------------------------------------------------------------------------- SA
def test_sa_aligns_the_subspaces_and_the_domains():
    ratios, div_pca, div_sa, acc_pca, acc_sa = [], [], [], [], []
    for seed in range(3):
        Xs, ys, Xt, yt = tilted_star(seed)
        m = SA(n_components=2, estimator=LogisticRegression(), random_state=0).fit(Xs, ys, Xt)
        Ps, Pt, M = m.source_components_, m.target_components_, m.M_
        np.testing.assert_allclose(M, Ps.T @ Pt)
        # M is the least-squares map of Ps onto Pt: no perturbation does better.
        best = np.linalg.norm(Ps @ M - Pt)
        rng = np.random.default_rng(seed)
        for _ in range(5):
            assert np.linalg.norm(Ps @ (M + 0.01 * rng.normal(size=M.shape)) - Pt) > best
        assert best < 0.2  # about the tilt of the planes (0.15 rad)
        ratios.append(best / np.linalg.norm(Ps - Pt))

        # Per-domain PCA coordinates (no alignment) against SA's.
        Zs_pca = (Xs - Xs.mean(0)) @ Ps
        Zt = m.transform(Xt)
        np.testing.assert_allclose(Zt, (Xt - Xt.mean(0)) @ Pt)
        Zs_sa = m.transform(Xs, domain="source")
        div_pca.append(mmd2(Zs_pca, Zt))
        div_sa.append(mmd2(Zs_sa, Zt))
        acc_pca.append(domain_accuracy(Zs_pca, Zt))
        acc_sa.append(domain_accuracy(Zs_sa, Zt))
        np.testing.assert_array_equal(m.predict(Xt), m.estimator_.predict(Zt))
    # measured ||Ps M - Pt|| / ||Ps - Pt||: 0.12, 0.08, 0.21
    assert np.mean(ratios) < 0.2
    # measured means: MMD² 0.0059 (per-domain PCA) vs 0.0004 (SA); 5-NN domain
    # classifier accuracy 0.92 vs 0.50 (chance)
    assert np.mean(div_sa) < 0.2 * np.mean(div_pca)
    assert np.mean(acc_sa) < 0.65 < np.mean(acc_pca)


def test_sa_default_and_labelled_target():
    Xs, ys, Xt, yt = tilted_star(0, d=30)
    assert SA().fit(Xs, ys, Xt).n_components_ == 20  # min(d, 20)
    yt_few = np.full(len(yt), np.nan)
    yt_few[:10] = yt[:10]
    m = SA(n_components=2).fit(Xs, ys, Xt, yt_few)
    assert m.score(Xt, yt) > 0.9


# ----------------------------------------------------------------------------- TCA
def test_tca_reduces_mmd_and_extends_out_of_sample():
    raw, tca, strong, kpca = [], [], [], []
    for seed in range(3):
        Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(rotation=40, random_state=seed)
        m = TCA(n_components=5, random_state=0).fit(Xs, ys, Xt)
        Zs, Zt = m.transform(Xs, domain="source"), m.transform(Xt)
        # out-of-sample extension of the training points = the in-sample embedding
        np.testing.assert_allclose(Zt, m.embedding_[len(Xs):], atol=1e-10)
        np.testing.assert_allclose(Zs, m.embedding_[:len(Xs)], atol=1e-10)
        np.testing.assert_allclose(m.embedding_.mean(0), 0.0, atol=1e-10)
        raw.append(mmd2(*standardize(Xs, Xt)))
        tca.append(mmd2(Zs, Zt))
        # the MMD term is active: a smaller μ weighs it more, μ → ∞ is kernel PCA
        for mu, out in ((1e-3, strong), (1e8, kpca)):
            m = TCA(n_components=5, mu=mu, random_state=0).fit(Xs, ys, Xt)
            out.append(mmd2(m.transform(Xs, "source"), m.transform(Xt)))
    # measured (mean of 3 seeds): raw 0.033, kernel PCA 0.018, TCA (μ=0.1) 0.013, μ=1e-3 0.010
    assert np.mean(tca) < 0.5 * np.mean(raw)
    assert np.mean(strong) < 0.7 * np.mean(kpca)
    assert all(s < t < k for s, t, k in zip(strong, tca, kpca))


def test_tca_solves_the_papers_eigenproblem():
    """Without landmarks, W spans the leading eigenvectors of (KLK + μI)^{-1} KHK."""
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(40, 30, n_features=3, random_state=0)
    m = TCA(n_components=3, mu=0.5, random_state=0).fit(Xs, ys, Xt)
    X = np.vstack([Xs, Xt])
    n, ns, nt = len(X), len(Xs), len(Xt)
    K = np.exp(-sq_dists(X, X) / (2 * m.sigma_**2))
    e = np.r_[np.full(ns, 1 / ns), np.full(nt, -1 / nt)]
    L = np.outer(e, e)
    H = np.eye(n) - 1.0 / n
    evals, evecs = scipy.linalg.eig(np.linalg.solve(K @ L @ K + 0.5 * np.eye(n), K @ H @ K))
    order = np.argsort(-evals.real)[:3]
    np.testing.assert_allclose(m.eigenvalues_, evals.real[order], rtol=1e-6)
    Z_paper = K @ evecs[:, order].real
    Z_paper -= Z_paper.mean(0)
    for j in range(3):
        corr = np.corrcoef(Z_paper[:, j], m.embedding_[:, j])[0, 1]
        assert abs(corr) > 1 - 1e-6
    # variances: 1 for the leading component, then the eigenvalue ratios
    np.testing.assert_allclose(m.embedding_.var(0), m.eigenvalues_ / m.eigenvalues_[0],
                               rtol=1e-6)


def test_tca_landmarks_above_max_samples():
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(n_samples=400, rotation=40,
                                                      random_state=0)
    m = TCA(n_components=5, max_samples=120, random_state=0).fit(Xs, ys, Xt)
    assert m.landmarks_.shape == (120, 2)
    assert m.W_.shape == (120, 5)
    # half of the landmarks from each domain
    assert sum(np.isclose(sq_dists(m.landmarks_, Xt).min(1), 0)) == 60
    Zs, Zt = m.transform(Xs, "source"), m.transform(Xt)
    np.testing.assert_allclose(Zt, m.embedding_[len(Xs):], atol=1e-10)
    assert mmd2(Zs, Zt) < 0.6 * mmd2(*standardize(Xs, Xt))  # measured 0.015 vs 0.034
    small = TCA(max_samples=5000).fit(Xs, ys, Xt)
    assert small.landmarks_.shape == (800, 2)


def test_tca_linear_kernel_and_regression():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(200, 150, n_features=4,
                                                      task="regression", random_state=0)
    m = TCA(kernel="linear", n_components=3, random_state=0).fit(Xs, ys, Xt)
    assert m.sigma_ is None
    assert m.transform(Xt).shape == (150, 3)
    assert np.isfinite(m.score(Xt, yt))
    # a linear kernel gives a linear embedding: z(x) is affine in x
    Z = m.transform(np.vstack([Xt[:1], Xt[1:2], (Xt[:1] + Xt[1:2]) / 2]))
    np.testing.assert_allclose(Z[2], (Z[0] + Z[1]) / 2, atol=1e-10)


# ----------------------------------------------------------------------------- FA
def test_fa_layout():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(50, 40, n_features=3, random_state=0)
    yt_few = np.full(len(yt), np.nan)
    yt_few[:8] = yt[:8]
    m = FA().fit(Xs, ys, Xt, yt_few)
    x = np.array([[1.0, -2.0, 3.0]])
    z = np.zeros((1, 3))
    np.testing.assert_array_equal(m.transform(x, domain="source"), np.hstack([x, x, z]))
    np.testing.assert_array_equal(m.transform(x, domain="target"), np.hstack([x, z, x]))
    np.testing.assert_array_equal(m.transform(x), np.hstack([x, z, x]))
    assert m.n_augmented_features_ == 9
    assert m.estimator_.coef_.shape == (1, 9)
    np.testing.assert_array_equal(m.predict(Xt),
                                  m.estimator_.predict(np.hstack([Xt, 0 * Xt, Xt])))


def _shifted_concepts(seed: int, n_source: int = 500, n_target: int = 500, d: int = 5):
    """Same inputs, slightly different labelling: the target boundary is tilted by ~40°."""
    rng = np.random.default_rng(seed)
    w = np.zeros(d)
    w[0] = 1.0
    v = np.zeros(d)
    v[1] = 1.0
    wt = np.cos(np.radians(40)) * w + np.sin(np.radians(40)) * v
    Xs, Xt = rng.normal(size=(n_source, d)), rng.normal(size=(n_target, d))
    return Xs, (Xs @ w > 0).astype(int), Xt, (Xt @ wt > 0).astype(int)


def test_fa_beats_source_only_with_20_target_labels():
    src, fa = [], []
    for seed in range(5):
        Xs, ys, Xt, yt = _shifted_concepts(seed)
        yt_few = np.full(len(yt), np.nan)
        yt_few[:20] = yt[:20]
        test = slice(20, None)
        src.append(SourceOnly(random_state=0).fit(Xs, ys, Xt).score(Xt[test], yt[test]))
        m = FA(random_state=0).fit(Xs, ys, Xt, yt_few)
        fa.append(m.score(Xt[test], yt[test]))
    # measured: SourceOnly 0.775, FA 0.911 (mean of 5 seeds; FA wins on every seed)
    assert np.mean(fa) > np.mean(src) + 0.08
    assert sum(f > s for f, s in zip(fa, src)) >= 4


# ----------------------------------------------------------------------------- digits
@pytest.mark.parametrize("method", ["SA", "CORAL"])
def test_feature_methods_beat_source_only_on_noisy_digits(method):
    est = RidgeClassifier()
    src, ada = [], []
    for seed in range(2):
        Xs, ys, Xt, yt = tk.datasets.make_digits_shift(shift="noise", random_state=seed)
        src.append(SourceOnly(estimator=est).fit(Xs, ys, Xt).score(Xt, yt))
        model = SA(estimator=est) if method == "SA" else CORAL(estimator=est)
        ada.append(model.fit(Xs, ys, Xt).score(Xt, yt))
    # measured (RidgeClassifier): SourceOnly 0.33, SA 0.81, CORAL 0.40
    assert min(a - s for a, s in zip(ada, src)) > (0.3 if method == "SA" else 0.03)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls,params", [
    (CORAL, {"reg": -1.0}), (CORAL, {"reg": np.nan}), (CORAL, {"reg": "big"}),
    (CORAL, {"align_mean": "yes"}),
    (SA, {"n_components": 0}), (SA, {"n_components": 2.5}), (SA, {"n_components": 4}),
    (TCA, {"n_components": 0}), (TCA, {"mu": 0.0}), (TCA, {"mu": -1}),
    (TCA, {"kernel": "poly"}), (TCA, {"sigma": -1.0}), (TCA, {"max_samples": 0}),
    (TCA, {"n_components": True}),
])
def test_bad_hyper_parameters_raise_parameter_error(cls, params):
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(40, 30, n_features=3, random_state=0)
    model = cls(**params)
    before = model.get_params()
    with pytest.raises(ParameterError):
        model.fit(Xs, ys, Xt)
    assert not hasattr(model, "estimator_")
    assert model.get_params().keys() == before.keys()


@pytest.mark.parametrize("cls", [CORAL, SA, TCA, FA])
def test_transform_checks_domain_and_fit(cls):
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(40, 30, n_features=3, random_state=0)
    with pytest.raises(tk.errors.NotFittedError):
        cls().transform(Xt)
    m = cls(random_state=0).fit(Xs, ys, Xt, yt)
    with pytest.raises(ParameterError, match="domain"):
        m.transform(Xt, domain="test")
    with pytest.raises(tk.errors.FeatureMismatchError):
        m.transform(Xt[:, :2])


def test_sa_too_many_components_for_the_samples_is_an_input_error():
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(40, 30, n_features=8, random_state=0)
    with pytest.raises(tk.errors.InputError, match="n_components"):
        SA(n_components=6).fit(Xs, ys, Xt[:5])


def test_registered_with_metadata():
    for name, settings in [("CORAL", ("unsupervised", "semi-supervised")),
                           ("SA", ("unsupervised", "semi-supervised")),
                           ("TCA", ("unsupervised", "semi-supervised")),
                           ("FA", ("semi-supervised", "supervised"))]:
        info = tk.get_method(name)
        assert info.family == "feature"
        assert info.settings == settings
        assert info.tasks == ("classification", "regression")
        assert info.backend == "sklearn"


@pytest.mark.parametrize("cls", [CORAL, SA, TCA, FA])
def test_save_load_round_trip(cls, tmp_path):
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(60, 40, n_features=3, random_state=0)
    yt_few = np.full(len(yt), np.nan)
    yt_few[:10] = yt[:10]
    m = cls(random_state=0).fit(Xs, ys, Xt, yt_few)
    m.save(tmp_path / "m")
    loaded = tk.load(tmp_path / "m")
    np.testing.assert_array_equal(m.predict_proba(Xt), loaded.predict_proba(Xt))
    np.testing.assert_array_equal(m.transform(Xs, "source"), loaded.transform(Xs, "source"))
