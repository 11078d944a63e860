"""The comparison engine: leaderboard contents, determinism, failures, no label leakage."""

from __future__ import annotations

import json
import threading

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import transferkit as tk
from transferkit import errors, registry
from transferkit.base import TransferEstimator, fit_weighted, make_base_estimator
from transferkit.selection import Leaderboard, compare

#: what the recording method saw in fit: (yt, thread name) per call.
CALLS: list[tuple[object, str]] = []


class _Recorder(TransferEstimator):
    """Test-only: a source-only fit that records the target labels it was given."""

    def __init__(self, estimator=None, random_state=None):
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, Xs, ys, Xt, yt=None, **fit_params):
        CALLS.append((None if yt is None else np.array(yt, dtype=object, copy=True),
                      threading.current_thread().name))
        return super().fit(Xs, ys, Xt, yt, **fit_params)

    def _fit(self, data, **fit_params):
        self.estimator_ = make_base_estimator(self.estimator, data.task, self.random_state)
        fit_weighted(self.estimator_, data.Xs, data.ys, None)


class _Broken(_Recorder):
    """Test-only: always fails in fit."""

    def _fit(self, data, **fit_params):
        raise RuntimeError("boom: this method is broken on purpose")


@pytest.fixture
def test_methods():
    """Register the test-only methods for one test, then remove them again."""
    CALLS.clear()
    registry.register(family="baseline", settings=("unsupervised", "semi-supervised"),
                      name="_Recorder")(_Recorder)
    registry.register(family="baseline", settings=("unsupervised",), name="_Broken")(_Broken)
    yield
    for key in ("_Recorder", "_Broken"):
        registry._REGISTRY.pop(key, None)
    CALLS.clear()


@pytest.fixture(scope="module")
def moons():
    return tk.datasets.make_two_moons_shift(n_samples=80, random_state=0)


LINEAR = LogisticRegression(max_iter=500)


def _compare(moons, names, **kw):
    Xs, ys, Xt, yt = moons
    kw.setdefault("y_eval", yt)
    kw.setdefault("seeds", (0, 1))
    kw.setdefault("progress", False)
    kw.setdefault("estimator", LINEAR)
    return compare(names, Xs, ys, Xt, **kw)


def test_leaderboard_contents(moons):
    board = _compare(moons, ["SourceOnly", "KLIEP"],
                     method_params={"KLIEP": {"sigmas": [0.1, 1, 10]}}, n_jobs=1)
    assert isinstance(board, Leaderboard)
    assert board.task == "classification" and board.metric == "accuracy"
    assert set(board.methods) == {"SourceOnly", "KLIEP"}
    assert board.n_eval == 80 and board.seeds == [0, 1]
    for row in board.rows:
        assert set(row) == {"method", "target_accuracy_mean", "target_accuracy_std",
                            "fit_seconds", "n_seeds", "error"}
        assert 0.0 <= row["target_accuracy_mean"] <= 1.0
        assert row["target_accuracy_std"] >= 0.0
        assert row["fit_seconds"] > 0 and row["n_seeds"] == 2 and row["error"] is None
    # Sorted best first; best() agrees with the table.
    means = [r["target_accuracy_mean"] for r in board.rows]
    assert means == sorted(means, reverse=True)
    assert board.best() == board.rows[0]["method"]
    assert board.mean_scores() == {r["method"]: r["target_accuracy_mean"] for r in board.rows}
    assert board.ran("KLIEP") and not board.ran("KMM")
    # The score is really the accuracy of the (first-seed) model on the target.
    Xs, ys, Xt, yt = moons
    for name in board.methods:
        model = board.models[name]
        assert board.model_score(name) == pytest.approx(np.mean(model.predict(Xt) == yt))
    assert hasattr(board.models["KLIEP"], "weights_")
    # Exports.
    frame = board.to_frame()
    assert list(frame.index) == board.methods
    assert frame.loc["KLIEP", "n_seeds"] == 2
    d = json.loads(json.dumps(board.to_dict()))
    assert d["best"] == board.best() and set(d["methods"]) == set(board.methods)
    assert len(d["results"]) == 4
    text = str(board)
    assert "SourceOnly" in text and "KLIEP" in text and "±" in text


def test_regression_columns():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(80, 80, task="regression")
    board = compare(["SourceOnly"], Xs, ys, Xt, y_eval=yt, seeds=1, progress=False)
    row = board["SourceOnly"]
    assert board.metric == "r2"
    assert {"r2_mean", "r2_std", "mse_mean"} <= set(row)
    pred = board.models["SourceOnly"].predict(Xt)
    assert row["mse_mean"] == pytest.approx(np.mean((pred - yt) ** 2))
    assert "MSE" in str(board)


def test_results_are_deterministic(moons):
    kw = {"method_params": {"KLIEP": {"sigmas": [0.1, 1, 10]}}, "n_jobs": 1}
    a = _compare(moons, ["SourceOnly", "KLIEP"], **kw)
    b = _compare(moons, ["KLIEP", "SourceOnly"], **kw)
    assert [r["score"] for r in a.results if r["method"] == "KLIEP"] == \
        [r["score"] for r in b.results if r["method"] == "KLIEP"]
    assert a.rows[0]["method"] == b.rows[0]["method"]


def test_a_failing_method_is_recorded_not_raised(moons, test_methods):
    board = _compare(moons, ["_Broken", "SourceOnly"], n_jobs=1)
    row = board["_Broken"]
    assert row["n_seeds"] == 0 and row["target_accuracy_mean"] is None
    assert "RuntimeError" in row["error"] and "boom" in row["error"]
    assert "_Broken" not in board.models
    assert board["SourceOnly"]["n_seeds"] == 2 and board.best() == "SourceOnly"
    assert board.methods[-1] == "_Broken"  # unscored rows come last
    assert not board.ran("_Broken") and board.ran("SourceOnly")
    assert list(board.mean_scores()) == ["SourceOnly"]


def test_y_eval_never_reaches_fit(moons, test_methods):
    Xs, ys, Xt, yt = moons
    _compare(moons, ["_Recorder"], n_jobs=1)
    assert [seen for seen, _ in CALLS] == [None, None]

    CALLS.clear()
    partial = np.full(yt.shape, np.nan)
    partial[:5] = yt[:5]
    board = _compare(moons, ["_Recorder"], yt=partial, y_eval=yt, n_jobs=1)
    assert len(CALLS) == 2
    for seen, _ in CALLS:
        seen = seen.astype(float)
        assert np.isnan(seen[5:]).all() and np.array_equal(seen[:5], yt[:5])
    assert board.n_eval == len(yt)


def test_partially_known_eval_labels(moons):
    Xs, ys, Xt, yt = moons
    y_eval = yt.astype(float)
    y_eval[::2] = np.nan
    board = _compare(moons, ["SourceOnly"], y_eval=y_eval, seeds=1)
    assert board.n_eval == len(yt) // 2
    model = board.models["SourceOnly"]
    assert board.model_score("SourceOnly") == pytest.approx(
        np.mean(model.predict(Xt[1::2]) == yt[1::2]))


def test_without_eval_labels_there_is_no_score(moons):
    board = _compare(moons, ["SourceOnly"], y_eval=None, seeds=1)
    assert board["SourceOnly"]["target_accuracy_mean"] is None
    assert board.best() is None and board["SourceOnly"]["n_seeds"] == 1
    assert "no target labels" in str(board)


def test_joblib_backend_switch(moons, test_methods):
    with joblib.parallel_config(backend="threading"):
        board = _compare(moons, ["_Recorder", "SourceOnly"], n_jobs=2)
    threads = {name for _, name in CALLS}
    assert threads and "MainThread" not in threads  # the fits ran in joblib's threads
    sequential = _compare(moons, ["_Recorder", "SourceOnly"], n_jobs=1)
    assert [r["score"] for r in board.results] == [r["score"] for r in sequential.results]


def test_process_backend_runs_registered_methods(moons):
    board = _compare(moons, ["SourceOnly", "NearestNeighborsWeighting"], n_jobs=2)
    assert all(r["error"] is None for r in board.rows)
    assert set(board.models) == {"SourceOnly", "NearestNeighborsWeighting"}


def test_user_errors_are_raised_before_any_work(moons, test_methods):
    Xs, ys, Xt, yt = moons
    with pytest.raises(errors.UnknownMethodError, match="KLIEPP"):
        _compare(moons, ["_Recorder", "KLIEPP"])
    with pytest.raises(errors.UnknownMethodError):
        _compare(moons, ["_Recorder"], method_params={"Nope": {}})
    with pytest.raises(errors.InputError, match="does not accept"):
        _compare(moons, ["_Recorder"], method_params={"_Recorder": {"sigma": 1}})
    with pytest.raises(errors.MissingTargetLabelsError, match="TargetOnly"):
        _compare(moons, ["_Recorder", "TargetOnly"])
    with pytest.raises(errors.LabelLengthError):
        _compare(moons, ["_Recorder"], y_eval=yt[:-1])
    with pytest.raises(errors.InputError, match="seeds"):
        _compare(moons, ["_Recorder"], seeds=())
    assert CALLS == []


@pytest.mark.parametrize("criterion", ["iwcv", "reverse", "entropy"])
def test_label_free_selection_avoids_the_method_that_breaks_the_target(criterion):
    # On this covariate shift CORAL's re-colouring costs 23 points (0.64 vs 0.87); a
    # label-free criterion must not pick it, and its pick must be near the best.
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(random_state=0)
    board = compare(["SourceOnly", "KLIEP", "CORAL"], Xs, ys, Xt, y_eval=yt, seeds=1,
                    progress=False, n_jobs=1, selection=criterion)
    assert board.selection == criterion
    assert all(r["selection_score_mean"] is not None for r in board.rows)
    picked = board.selected()
    assert picked != "CORAL"
    assert board[picked]["target_accuracy_mean"] >= board[board.best()][
        "target_accuracy_mean"] - 0.02
    assert board.to_dict()["selected"] == picked


def test_ensemble_entropy_is_the_entropy_of_the_seed_averaged_predictions(moons):
    """A network's seeds disagree on the target: the seed ensemble is less confident than
    its members on average, and its entropy is what choose() ranks by."""
    from sklearn.neural_network import MLPClassifier

    net = MLPClassifier((16,), max_iter=300)  # seeded per run: the seeds differ
    board = _compare(moons, ["SourceOnly"], estimator=net, seeds=(0, 1, 2), n_jobs=1,
                     selection="entropy")
    probas = [r["target_proba"] for r in board.results]
    mean = board.mean_target_proba("SourceOnly")
    np.testing.assert_allclose(mean, np.mean(probas, axis=0), rtol=1e-6)
    ens = board.terms("SourceOnly", "ensemble_entropy")
    np.testing.assert_allclose(ens, -np.sum(mean * np.log(mean), axis=1), rtol=1e-6)
    members = np.mean([-np.sum(p * np.log(p), axis=1) for p in probas], axis=0)
    assert np.all(ens >= members - 1e-6) and ens.mean() > members.mean()  # concavity
    assert board.criteria["ensemble_entropy"] is False  # lower is better
    assert board.mean_target_proba("SourceOnly", min_seeds=4) is None
    one = _compare(moons, ["SourceOnly"], seeds=(0,), n_jobs=1, selection="entropy")
    assert one.terms("SourceOnly", "ensemble_entropy") is None  # needs two seeds
    assert "ensemble_entropy" not in one.criteria
    # one seed's probabilities are kept all the same (choose checks them for a collapse)
    np.testing.assert_allclose(one.mean_target_proba("SourceOnly").sum(1), 1.0, rtol=1e-6)


def test_selection_holdout_is_checked():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(random_state=0)
    with pytest.raises(tk.errors.InputError, match="selection_holdout"):
        compare(["SourceOnly"], Xs, ys, Xt, seeds=1, progress=False, selection="iwcv",
                selection_holdout=1.5)


def test_compare_runs_its_jobs_on_a_dask_cluster():
    """joblib's dask backend sends every (method, seed) fit to a local dask.distributed
    cluster; the leaderboard is the same as with the default backend."""
    distributed = pytest.importorskip("distributed")
    import joblib

    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(200, 200, random_state=0)
    kwargs = dict(seeds=2, progress=False, selection=["iwcv", "entropy"])
    local = compare(["SourceOnly", "CORAL"], Xs, ys, Xt, y_eval=yt, n_jobs=1, **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), \
                distributed.get_task_stream(client) as stream:
            board = compare(["SourceOnly", "CORAL"], Xs, ys, Xt, y_eval=yt, **kwargs)
    assert len(stream.data) >= 4  # the four (method, seed) fits ran as dask tasks
    for m in local.methods:
        assert board[m]["target_accuracy_mean"] == pytest.approx(
            local[m]["target_accuracy_mean"])
    assert board.selected() == local.selected()
