"""The ``transferkit`` command, run as a user runs it (a subprocess), and ``pipeline.run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from transferkit import errors
from transferkit.cli import main
from transferkit.pipeline import execute, run

SUMMARY_METHOD_KEYS = {"target_accuracy_mean", "target_accuracy_std", "fit_seconds", "n_seeds",
                       "error", "selection_scores"}


def cli(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("TRANSFERKIT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A source/target CSV pair (covariate shift, n=200) with an id column; half the target
    rows are labelled."""
    d = tmp_path_factory.mktemp("tables")
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(200, 200, random_state=0)
    src = pd.DataFrame({"id": np.arange(200), "x1": Xs[:, 0], "x2": Xs[:, 1], "y": ys})
    y_target = pd.array(yt, dtype="Int64")
    y_target[100:] = pd.NA
    tgt = pd.DataFrame({"id": np.arange(1000, 1200), "x1": Xt[:, 0], "x2": Xt[:, 1],
                        "y": y_target})
    src.to_csv(d / "source.csv", index=False)
    tgt.to_csv(d / "target.csv", index=False)
    tgt.drop(columns="y").to_csv(d / "new.csv", index=False)
    return d


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``main(args)`` in this process (faster than a subprocess), as a CompletedProcess."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, out.out, out.err)


def _assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0]


def test_a_user_error_from_the_real_command_is_one_line(tables):
    proc = cli("run", "--source", str(tables / "source.csv"), "--target",
               str(tables / "target.csv"), "--label", "nope")
    _assert_user_error(proc, "'nope'", "x1")


def test_run_writes_summary_report_and_pngs(tables, tmp_path):
    out = tmp_path / "report"
    proc = cli("run", "--source", str(tables / "source.csv"), "--target",
               str(tables / "target.csv"), "--label", "y", "--estimator", "linear",
               "--seeds", "2", "--output", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "SourceOnly" in proc.stdout and "index.html" in proc.stdout
    assert "comparing methods" not in proc.stderr  # --quiet: no progress bar

    summary = json.loads((out / "summary.json").read_text())
    assert {"task", "data", "methods", "best_method", "improvement_over_source_only",
            "skipped", "verdict", "selected_method", "diagnostics"} <= set(summary)
    assert summary["verdict"]["headline"] in proc.stdout
    assert summary["task"] == "classification" and summary["selection_rule"] == "default"
    data = summary["data"]
    assert (data["n_source"], data["n_target"], data["n_features"]) == (200, 200, 2)
    assert data["source"].endswith("source.csv") and data["target"].endswith("target.csv")
    assert data["n_target_eval"] == 100  # the labelled half, none given to training
    assert "SourceOnly" in summary["methods"]
    for entry in summary["methods"].values():
        assert set(entry) == SUMMARY_METHOD_KEYS
        assert entry["n_seeds"] == 2
    best = summary["best_method"]
    assert best in summary["methods"]
    imp = summary["improvement_over_source_only"]
    assert {"mean", "std"} <= set(imp)
    assert imp["mean"] == pytest.approx(summary["methods"][best]["target_accuracy_mean"]
                                        - summary["methods"]["SourceOnly"]
                                        ["target_accuracy_mean"])
    # Methods that need target labels were skipped, with the reason.
    assert "TargetOnly" in summary["skipped"]
    assert "target" in summary["skipped"]["TargetOnly"]

    html = (out / "index.html").read_text()
    for png in ("leaderboard.png", "domains.png", "decision_boundary.png"):
        assert (out / png).stat().st_size > 1000
        assert f'src="{png}"' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert best in html
    # Nothing temporary is left next to the report.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_methods_lists_the_registry(capsys):
    proc = cli("methods")
    assert proc.returncode == 0, proc.stderr
    assert "SourceOnly" in proc.stdout and "family" in proc.stdout
    proc = in_process(capsys, "methods", "--task", "regression", "--family", "baseline")
    assert proc.returncode == 0 and "SourceOnly" in proc.stdout and "KLIEP" not in proc.stdout


def test_no_arguments_prints_help(capsys):
    proc = in_process(capsys)
    assert proc.returncode == 0 and "run" in proc.stdout and "predict" in proc.stdout


def test_fit_then_predict(tables, tmp_path, capsys):
    model = tmp_path / "model"
    proc = in_process(capsys, "fit", "--method", "KLIEP", "--source", str(tables / "source.csv"),
                      "--target", str(tables / "target.csv"), "--label", "y", "--output",
                      str(model), "--param", "sigmas=[0.1,1,10]", "--estimator", "linear")
    assert proc.returncode == 0, proc.stderr
    loaded = tk.load(str(model))
    assert list(loaded.sigmas) == [0.1, 1, 10]
    preds = tmp_path / "preds.csv"
    proc = in_process(capsys, "predict", "--model", str(model), "--data",
                      str(tables / "new.csv"), "--output", str(preds))
    assert proc.returncode == 0, proc.stderr
    out = pd.read_csv(preds)
    assert list(out.columns[:2]) == ["id", "prediction"]
    assert {c for c in out.columns if c.startswith("proba_")} == {"proba_0", "proba_1"}
    assert out["id"].tolist() == list(range(1000, 1200))
    np.testing.assert_allclose(out[["proba_0", "proba_1"]].sum(axis=1), 1.0)


@pytest.mark.parametrize("args,needles", [
    (["run", "--source", "{d}/missing.csv", "--target", "{d}/target.csv", "--label", "y"],
     ["missing.csv"]),
    (["run", "--methods", "NoSuchMethod"], ["NoSuchMethod"]),
    (["run", "--seeds", "many"], ["--seeds"]),
    (["fit", "--method", "KLIEP"], ["Missing option"]),
    (["fit", "--method", "KLIEP", "--source", "{d}/source.csv", "--target", "{d}/target.csv",
      "--label", "y", "--output", "{d}/m", "--param", "sigma=1"], ["sigma"]),
    (["predict", "--model", "{d}/no-model", "--data", "{d}/new.csv", "--output", "{d}/p.csv"],
     []),
])
def test_user_errors_print_one_line_and_exit_2(tables, args, needles, capsys):
    proc = in_process(capsys, *[a.format(d=tables) for a in args])
    _assert_user_error(proc, *needles)


def test_run_refuses_to_overwrite_a_folder_that_is_not_a_report(tables, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    proc = in_process(capsys, "run", "--source", str(tables / "source.csv"), "--target",
               str(tables / "target.csv"), "--label", "y", "--output", str(mine))
    _assert_user_error(proc, "not a transferkit report")
    assert (mine / "thesis.tex").read_text() == "precious"


def test_pipeline_semi_supervised_and_method_filter(tables, tmp_path):
    summary = run(tmp_path / "r", tables / "source.csv", tables / "target.csv", "y",
                  methods=["TargetOnly", "NearestNeighborsWeighting"], seeds=1,
                  estimator="linear", target_train_fraction=0.3, n_jobs=1, progress=False)
    assert set(summary["methods"]) == {"SourceOnly", "TargetOnly", "NearestNeighborsWeighting"}
    assert summary["data"]["n_target_train_labels"] == 30
    assert summary["data"]["n_target_eval"] == 70  # training labels are not scored on
    assert summary["skipped"] == {}
    assert summary["methods"]["TargetOnly"]["error"] is None
    # A rerun into the same folder replaces the old report.
    again = run(tmp_path / "r", tables / "source.csv", tables / "target.csv", "y",
                methods=["SourceOnly"], seeds=1, estimator="linear", n_jobs=1,
                progress=False)
    assert set(again["methods"]) == {"SourceOnly"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_run_cautious_chooses_with_the_cautious_rule(tables, tmp_path, capsys):
    from transferkit.selection import choose
    from transferkit.selection.choice import CAUTIOUS_GUARD_SE

    proc = in_process(capsys, "run", "--source", str(tables / "source.csv"), "--target",
                      str(tables / "target.csv"), "--label", "y", "--estimator", "linear",
                      "--methods", "KMM,CORAL", "--seeds", "2", "--jobs", "1",
                      "--output", str(tmp_path / "r"), "--quiet", "--cautious")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["selection_rule"] == "cautious"
    # both candidates fail the cautious guard here (the default rule's guard keeps them)
    assert "cautious rule" in " ".join(summary["selection_reasons"])
    assert "Cautious rule" in summary["selection"]
    res = execute(tmp_path / "again", tables / "source.csv", tables / "target.csv", "y",
                  methods=["KMM", "CORAL"], seeds=2, estimator="linear", n_jobs=1,
                  progress=False, cautious=True)
    assert res.summary["selected_method"] == summary["selected_method"] == choose(
        res.leaderboard, guard_se=CAUTIOUS_GUARD_SE).method


def test_pipeline_errors():
    with pytest.raises(errors.InputError, match="both"):
        run("unused", source="a.csv")
    with pytest.raises(errors.InputError, match="estimator"):
        run("unused", estimator="forest")
    with pytest.raises(errors.UnknownMethodError):
        run("unused", methods=["KLIEPP"])


@pytest.mark.slow
def test_default_run_reproduces_the_seed(tmp_path):
    # Its wall time (about 100 s on 2 free cores) is measured in docs/benchmarks.md, not here.
    proc = cli("run", "--output", str(tmp_path / "demo"), "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    methods = summary["methods"]
    assert methods["SourceOnly"]["n_seeds"] == 3
    assert methods["KLIEP"]["target_accuracy_mean"] >= 0.86  # seed: 0.82 -> 0.87
    verdict = summary["verdict"]  # chosen without target labels, measured with them
    assert verdict["decision"] == "transfer_helps" and verdict["verified"]
    assert methods[summary["selected_method"]]["target_accuracy_mean"] >= 0.9
    assert methods["DANN"]["target_accuracy_mean"] >= 0.94  # seed: 0.84 -> 0.94
    assert summary["improvement_over_source_only"]["mean"] > 0
    assert "mmd" in summary["diagnostics"]
    assert (tmp_path / "demo" / "weights.png").exists()


def _board(scores: dict[str, list[float]]):
    from transferkit.selection.compare import _leaderboard

    infos = [tk.get_method(name) for name in scores]
    results = [{"method": name, "seed": seed, "score": s, "mse": None, "fit_seconds": 0.1,
                "error": None, "warnings": [], "model": None}
               for name, ss in scores.items() for seed, s in enumerate(ss)]
    return _leaderboard(infos, list(range(3)), results, "classification", n_eval=50)


def test_improvement_is_paired_over_seeds():
    from transferkit.pipeline import _improvement, _negative

    board = _board({"SourceOnly": [0.80, 0.82, 0.84], "KLIEP": [0.86, 0.85, 0.90],
                    "KMM": [0.70, 0.75, 0.80]})
    imp = _improvement(board, board.best())
    assert imp["method"] == "KLIEP"
    assert imp["mean"] == pytest.approx(0.05) and imp["std"] == pytest.approx(np.std(
        [0.06, 0.03, 0.06], ddof=1))
    assert _negative(board) == ["KMM"]


def test_diagnose_ranks_the_shifted_column_first(tmp_path, capsys):
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    tgt = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    tgt["c"] += 0.8
    for df in (src, tgt):
        df["y"] = (df["a"] > 0).astype(int)
    src.to_csv(tmp_path / "s.csv", index=False)
    tgt.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "d.json"
    proc = in_process(capsys, "diagnose", "--source", str(tmp_path / "s.csv"), "--target",
                      str(tmp_path / "t.csv"), "--label", "y", "--permutations", "50",
                      "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Most shifted features" in proc.stdout
    report = json.loads(out.read_text())
    assert report["drift"][0]["feature"] == "c" and report["mmd"]["p_value"] < 0.05
    proc = in_process(capsys, "diagnose", "--source", str(tmp_path / "s.csv"), "--target",
                      str(tmp_path / "t.csv"), "--label", "nope")
    assert proc.returncode == 2 and "no label column 'nope'" in proc.stderr


def test_run_summary_holds_the_shift_diagnostics(tables, tmp_path):
    summary = run(tmp_path / "out", str(tables / "source.csv"), str(tables / "target.csv"), "y",
                  methods=["CORAL"], seeds=1, progress=False, n_jobs=1)
    diag = summary["diagnostics"]
    assert {"mmd", "drift", "proxy_a_distance", "summary"} <= set(diag)
    names = summary["data"]["feature_names"]
    assert {d["feature"] for d in diag["drift"]} <= set(names)
    p = [d["p_value"] for d in diag["drift"]]
    assert p == sorted(p)  # most shifted first
