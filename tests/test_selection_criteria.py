"""Label-free model selection criteria (transferkit.selection.criteria)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import transferkit as tk
from transferkit.errors import (
    FeatureMismatchError,
    InputError,
    LabelLengthError,
    MissingTargetLabelsError,
    NonFiniteInputError,
    ParameterError,
    TransferkitError,
    UnsupportedTaskError,
)
from transferkit.selection.criteria import (
    CRITERIA,
    DEV,
    IWCV,
    PredictionEntropy,
    ReverseValidation,
    SelectionCriterion,
    SoftNeighborhoodDensity,
    TargetCV,
    dev_estimate,
    get_criterion,
    select,
    snd,
)


class FixedProba:
    """A 'fitted model' with given class-1 probabilities, one per row of X (by position)."""

    def __init__(self, p1: np.ndarray):
        self.p1 = np.asarray(p1, dtype=float)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = self.p1[: len(X)]
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


@pytest.fixture(scope="module")
def problem():
    """Covariate shift with a good (k-NN) and a bad (shuffled-label) source model."""
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(800, 800, random_state=0)
    Xa, Xv, ya, yv = train_test_split(Xs, ys, test_size=0.5, random_state=0)
    knn = KNeighborsClassifier(15)
    good = tk.make("SourceOnly", estimator=knn).fit(Xa, ya, Xt)
    shuffled = np.random.RandomState(0).permutation(ya)
    bad = tk.make("SourceOnly", estimator=knn).fit(Xa, shuffled, Xt)
    assert good.score(Xt, yt) > 0.85 and bad.score(Xt, yt) < 0.8  # measured: 0.90 vs 0.71
    return dict(Xa=Xa, ya=ya, Xv=Xv, yv=yv, Xt=Xt, yt=yt, good=good, bad=bad)


# ------------------------------------------------------------------ ranking
@pytest.mark.parametrize("name", ["iwcv", "dev", "reverse", "entropy"])
def test_criterion_ranks_good_model_above_bad(problem, name):
    p = problem
    best, scores = select({"bad": p["bad"], "good": p["good"]}, p["Xv"], p["yv"], p["Xt"],
                          criterion=name)
    assert best == "good", scores
    assert set(scores) == {"bad", "good"}


def test_iwcv_and_dev_estimate_target_error_of_good_model(problem):
    p = problem
    true = 1 - p["good"].score(p["Xt"], p["yt"])
    for crit in (IWCV(), DEV()):
        assert abs(crit.score(p["good"], p["Xv"], p["yv"], p["Xt"]) - true) < 0.05


def test_target_cv_ranks_good_method_above_bad(problem):
    p = problem
    yt = np.where(np.arange(len(p["yt"])) < 40, p["yt"], np.nan)
    dummy = tk.make("SourceOnly", estimator=DummyClassifier()).fit(p["Xa"], p["ya"], p["Xt"])
    best, scores = select({"dummy": dummy, "good": p["good"]}, p["Xv"], p["yv"], p["Xt"],
                          criterion="target_cv", Xs_train=p["Xa"], ys_train=p["ya"], yt=yt)
    # measured: 0.975 vs 0.925 (the first 40 target rows are mostly one class)
    assert best == "good" and scores["good"] > scores["dummy"], scores


def test_target_cv_refit_hides_the_scored_labels(problem):
    # A 1-NN trained on the labelled target rows is perfect on them in-sample; the
    # cross-validated score (labels of each fold hidden from fit) must be lower.
    p = problem
    yt = np.where(np.arange(len(p["yt"])) < 60, p["yt"], np.nan)
    m = tk.make("TargetOnly", estimator=KNeighborsClassifier(1)).fit(p["Xa"], p["ya"],
                                                                    p["Xt"], yt)
    crit = TargetCV(n_splits=5)
    in_sample = crit.score(m, p["Xv"], p["yv"], p["Xt"], yt=yt)
    cv = crit.score(m, p["Xv"], p["yv"], p["Xt"], Xs_train=p["Xa"], ys_train=p["ya"], yt=yt)
    assert in_sample == 1.0
    assert cv < 0.99


# ------------------------------------------------------------------ IWCV accuracy
def _shifted_fits(n_seeds: int, shift: float):
    """Per seed: a linear source-only model (misspecified, so the shift matters) fitted on
    half the source, the other half (Xv, yv), the target inputs and its true target error."""
    for seed in range(n_seeds):
        Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(300, 300, shift=shift,
                                                          random_state=seed)
        Xa, Xv, ya, yv = train_test_split(Xs, ys, test_size=0.5, random_state=seed)
        m = tk.make("SourceOnly").fit(Xa, ya, Xt)
        yield seed, m, Xv, yv, Xt, 1 - m.score(Xt, yt)


def test_iwcv_closer_to_target_error_than_source_validation():
    err_src, err_iw = [], []
    for seed, m, Xv, yv, Xt, true in _shifted_fits(6, shift=1.5):
        err_src.append(abs(np.mean(m.predict(Xv) != yv) - true))
        err_iw.append(abs(IWCV(random_state=seed).score(m, Xv, yv, Xt) - true))
    # measured (30 seeds): 0.147 vs 0.029
    assert np.mean(err_iw) < 0.5 * np.mean(err_src), (err_iw, err_src)


def test_iwcv_weights_mean_one_and_clipped(problem):
    p = problem
    w = IWCV().weights(p["Xv"], p["Xt"])
    assert w.shape == (len(p["Xv"]),)
    assert np.isclose(w.mean(), 1.0) and (w >= 0).all()
    wc = IWCV(max_weight=1.5).weights(p["Xv"], p["Xt"])
    assert np.isclose(wc.mean(), 1.0)
    assert np.sum(np.isclose(wc, wc.max())) >= 5  # many rows sit at the clip
    assert wc.max() < w.max()


# ------------------------------------------------------------------ DEV
def test_dev_control_variate_reduces_variance_when_weights_are_unbiased():
    # L = w * l with E[w] = 1 and l independent of w: the control variate removes most of
    # the spread that comes from w (checks that eta has the right sign and size).
    rng = np.random.RandomState(0)
    plain, dev = [], []
    for _ in range(300):
        w = rng.exponential(1.0, 200)
        loss = (rng.random_sample(200) < 0.8).astype(float)
        plain.append(np.mean(w * loss))
        dev.append(dev_estimate(loss, w))
    assert abs(np.mean(dev) - 0.8) < 0.01
    # theory: std ratio sqrt(1 - 0.8**2 / (2 * 0.8 - 0.8**2)) = 0.58
    assert np.std(dev) < 0.7 * np.std(plain)


def test_dev_estimate_constant_weights_is_mean_loss():
    loss = np.array([0.0, 1.0, 1.0, 0.0])
    assert dev_estimate(loss, np.ones(4)) == pytest.approx(0.5)


def test_dev_does_not_increase_variance_much_over_iwcv():
    # Measured (30 seeds, shift=1): std of the error 0.033 (IWCV) vs 0.033 (DEV); at
    # shift=2 DEV is worse (0.064 vs 0.051), see the DEV docstring.
    e_iw, e_dev = [], []
    for seed, m, Xv, yv, Xt, true in _shifted_fits(8, shift=1.0):
        e_iw.append(IWCV(random_state=seed).score(m, Xv, yv, Xt) - true)
        e_dev.append(DEV(random_state=seed).score(m, Xv, yv, Xt) - true)
    assert np.std(e_dev) <= 1.25 * np.std(e_iw), (e_iw, e_dev)


# ------------------------------------------------------------------ entropy / SND signs
def test_entropy_sign_convention():
    n = 200
    crit = PredictionEntropy()
    X = np.zeros((n, 2))
    confident = FixedProba(np.tile([0.02, 0.98], n // 2))
    unsure = FixedProba(np.tile([0.45, 0.55], n // 2))
    assert crit.greater_is_better is False
    assert crit.score(confident, None, None, X) < crit.score(unsure, None, None, X)
    assert crit.score(FixedProba(np.full(n, 0.5)), None, None, X) == pytest.approx(np.log(2))
    assert select({"unsure": unsure, "confident": confident}, None, None, X,
                  criterion="entropy")[0] == "confident"


def test_snd_sign_convention_and_collapse():
    n = 300
    rng = np.random.RandomState(0)
    X = np.zeros((n, 2))
    crit = SoftNeighborhoodDensity()
    assert crit.greater_is_better is True
    clustered = FixedProba(np.where(rng.random_sample(n) < 0.5, 0.03, 0.97))
    spread = FixedProba(rng.random_sample(n))
    assert crit.score(clustered, None, None, X) > crit.score(spread, None, None, X)
    # Documented failure mode: one prediction everywhere gets the maximum log(n - 1).
    const = crit.score(FixedProba(np.full(n, 0.7)), None, None, X)
    assert const == pytest.approx(np.log(n - 1))


def test_snd_blocks_match_one_shot():
    P = np.random.RandomState(1).dirichlet(np.ones(3), 50)
    assert snd(P, block=7) == pytest.approx(snd(P, block=1000))


def test_snd_subsamples_large_targets():
    n = 500
    crit = SoftNeighborhoodDensity(max_samples=100)
    m = FixedProba(np.full(n, 0.2))
    # Only the first 100 rows' predictions are used by FixedProba after subsampling.
    assert crit.score(m, None, None, np.zeros((n, 2))) == pytest.approx(np.log(99))


# ------------------------------------------------------------------ registry / protocol
def test_get_criterion_names_and_instances():
    for name, cls in CRITERIA.items():
        crit = get_criterion(name)
        assert isinstance(crit, cls) and isinstance(crit, SelectionCriterion)
        assert crit.name == name
    inst = ReverseValidation()
    assert get_criterion(inst) is inst
    assert get_criterion("IWCV", max_weight=5).max_weight == 5


def test_reverse_single_class_pseudo_labels(problem):
    p = problem
    const = tk.make("SourceOnly", estimator=DummyClassifier(strategy="constant", constant=1))
    const.fit(p["Xa"], p["ya"], p["Xt"])
    score = ReverseValidation().score(const, p["Xv"], p["yv"], p["Xt"])
    assert score == pytest.approx(np.mean(p["yv"] == 1))


# ------------------------------------------------------------------ errors
def test_errors_are_transferkit_errors_with_help(problem):
    p = problem
    good, Xv, yv, Xt = p["good"], p["Xv"], p["yv"], p["Xt"]
    with pytest.raises(ParameterError, match="iwcv, dev, reverse"):
        get_criterion("accuracy")
    with pytest.raises(ParameterError, match="does not accept"):
        get_criterion("snd", bogus=1)
    with pytest.raises(FeatureMismatchError, match="same columns"):
        IWCV().score(good, Xv, yv, Xt[:, :1])
    with pytest.raises(LabelLengthError, match="one label"):
        select({"g": good}, Xv, yv[:-3], Xt)
    with pytest.raises(NonFiniteInputError, match="NaN"):
        Xbad = Xt.copy()
        Xbad[0, 0] = np.nan
        PredictionEntropy().score(good, Xv, yv, Xbad)
    with pytest.raises(InputError, match="ys_val"):
        DEV().score(good, Xv, None, Xt)
    with pytest.raises(UnsupportedTaskError, match="predict_proba"):
        SoftNeighborhoodDensity().score(object.__new__(_PredictOnly), Xv, yv, Xt)
    with pytest.raises(InputError, match="no predict"):
        IWCV().score(object(), Xv, yv, Xt)
    with pytest.raises(MissingTargetLabelsError, match="yt"):
        TargetCV().score(good, Xv, yv, Xt)
    with pytest.raises(MissingTargetLabelsError, match="no labelled"):
        TargetCV().score(good, Xv, yv, Xt, yt=np.full(len(Xt), np.nan))
    with pytest.raises(InputError, match="non-empty"):
        select({}, Xv, yv, Xt)
    with pytest.raises(ParameterError, match="max_weight"):
        IWCV(max_weight=0.5)
    with pytest.raises(ParameterError, match="temperature"):
        SoftNeighborhoodDensity(temperature=0)
    with pytest.raises(InputError, match="fit_weights"):
        IWCV(weighting=object()).score(good, Xv, yv, Xt)
    for exc in (ParameterError, InputError):
        assert issubclass(exc, TransferkitError) and issubclass(exc, ValueError)


class _PredictOnly:
    def predict(self, X):
        return np.zeros(len(X), dtype=int)
