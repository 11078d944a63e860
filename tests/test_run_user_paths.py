"""`transferkit run` on the inputs users get wrong: each fails early with one line that says
what to fix, or runs and says what it did with the data."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from test_cli import _assert_user_error, in_process
from transferkit.report.html import render_index
from transferkit.selection.compare import format_table

FAST = ("--methods", "CORAL", "--seeds", "1", "--estimator", "linear", "-q", "--jobs", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("user_paths")
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(150, 120, random_state=0)
    src = pd.DataFrame({"customer": np.arange(150), "x1": Xs[:, 0], "x2": Xs[:, 1],
                        "y": np.array(["no", "yes"])[ys]})
    tgt = pd.DataFrame({"customer": np.arange(5000, 5120), "x1": Xt[:, 0], "x2": Xt[:, 1],
                        "y": np.array(["no", "yes"])[yt]})
    src.to_csv(d / "src.csv", index=False)
    tgt.to_csv(d / "tgt.csv", index=False)
    tgt.assign(y=yt).to_csv(d / "tgt_numbers.csv", index=False)  # 0/1 against no/yes
    text = pd.DataFrame({"review": ["good"] * 3 + ["bad"] * 3, "n": range(6),
                         "y": ["pos", "pos", None, "neg", "neg", "neg"]})
    text.to_csv(d / "text.csv", index=False)
    text.fillna("pos").to_csv(d / "text_labelled.csv", index=False)
    return d


def _run(capsys, data, out, *extra):
    return in_process(capsys, "run", "--source", str(data / "src.csv"), "--target",
                      str(data / "tgt.csv"), "--label", "y", "--output", str(out), *FAST,
                      *extra)


def test_target_labels_the_source_never_had_are_refused(capsys, data, tmp_path):
    proc = in_process(capsys, "run", "--source", str(data / "src.csv"), "--target",
                      str(data / "tgt_numbers.csv"), "--label", "y", "--output",
                      str(tmp_path / "r"), *FAST)
    _assert_user_error(proc, "0, 1", "not source classes", "'no', 'yes'")
    assert not (tmp_path / "r").exists()


def test_text_column_checks_labels_and_type_before_encoding(capsys, data, tmp_path):
    def run(column, source="text_labelled.csv"):
        return in_process(capsys, "run", "--source", str(data / source), "--target",
                          str(data / "text.csv"), "--label", "y", "--text-column", column,
                          "--output", str(tmp_path / "r"), *FAST)

    # an empty source label used to raise a TypeError from deep inside
    _assert_user_error(run("review", source="text.csv"), "1 empty cells")
    _assert_user_error(run("n"), "holds numbers")
    _assert_user_error(run("y"), "both 'y'")


def test_an_unwritable_output_fails_before_any_fitting(capsys, data, tmp_path):
    (tmp_path / "a_file").write_text("x")
    _assert_user_error(_run(capsys, data, tmp_path / "a_file" / "report"), "not a folder")


def test_a_report_folder_with_the_users_files_is_not_replaced(capsys, data, tmp_path):
    out = tmp_path / "r"
    assert _run(capsys, data, out).returncode == 0
    first = json.loads((out / "summary.json").read_text())
    (out / ".DS_Store").write_text("finder")  # a file browser's leftovers do not count
    assert _run(capsys, data, out).returncode == 0  # its own files: replaced
    (out / "notes.txt").write_text("mine")
    _assert_user_error(_run(capsys, data, out), "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"
    assert set(first["files"]) <= {p.name for p in out.iterdir()}


def test_the_report_folder_gets_the_umask_permissions(capsys, data, tmp_path):
    old = os.umask(0o022)
    try:
        assert _run(capsys, data, tmp_path / "r").returncode == 0
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755  # mkdtemp alone gives 0o700


def test_identifier_columns_are_flagged_left_out_and_kept_with_predictions(capsys, data,
                                                                             tmp_path):
    proc = _run(capsys, data, tmp_path / "a")
    assert proc.returncode == 0
    assert "warning: column 'customer' has a different value in every row" in proc.stdout
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert "customer" in summary["data"]["feature_names"]
    assert "customer" in summary["warnings"][0]
    assert "Check the data" in (tmp_path / "a" / "index.html").read_text()

    proc = _run(capsys, data, tmp_path / "b", "--ignore", "customer")
    assert proc.returncode == 0 and "warning" not in proc.stdout
    assert "not used as features: customer" in proc.stdout
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["data"]["feature_names"] == ["x1", "x2"] and summary["warnings"] == []
    # the label-shift estimate is shown beside the class mix the target labels have
    shift = summary["diagnostics"]
    assert shift["label_shift"]["n_labelled_target"] == 120
    assert "The 120 labelled target rows have no: " in shift["summary"]
    pred = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert list(pred.columns[:3]) == ["row", "customer", "prediction"]
    assert pred["customer"].iloc[0] == 5000

    _assert_user_error(_run(capsys, data, tmp_path / "c", "--ignore", "custmer"), "'custmer'")


def test_an_empty_method_list_is_an_error_not_every_method(capsys, data, tmp_path):
    proc = in_process(capsys, "run", "--source", str(data / "src.csv"), "--target",
                      str(data / "tgt.csv"), "--label", "y", "--methods", "",
                      "--output", str(tmp_path / "r"))
    _assert_user_error(proc, "methods is empty")


def test_the_report_says_which_model_was_saved_when_the_verdict_overrules_the_choice():
    summary = {"selected_method": "KLIEP", "delivered_method": "SourceOnly",
               "methods": {"SourceOnly": {"target_accuracy_mean": 0.6, "n_seeds": 1},
                           "KLIEP": {"target_accuracy_mean": 0.57, "n_seeds": 1}},
               "data": {"label": None, "encoder": None, "n_source": 10}}
    html = render_index(summary)
    assert "KLIEP ← label-free choice" in html and "SourceOnly ← saved" in html
    assert "0.600 ±" not in html  # one seed: no spread
    assert "<th>encoder</th>" not in html and "<th>n_source</th>" in html


def test_one_seed_shows_no_spread_in_the_text_table():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(60, 60, random_state=0)
    board = tk.selection.compare(["SourceOnly"], Xs, ys, Xt, y_eval=yt, seeds=1, n_jobs=1,
                                 progress=False)
    assert "±" not in format_table(board)


def test_ignore_is_checked_for_every_kind_of_input(capsys, data, tmp_path):
    _assert_user_error(_run(capsys, data, tmp_path / "a", "--ignore", "y"), "label column")
    proc = in_process(capsys, "run", "--source", str(data / "text_labelled.csv"), "--target",
                      str(data / "text.csv"), "--label", "y", "--text-column", "review",
                      "--ignore", "nope", "--output", str(tmp_path / "b"), *FAST)
    _assert_user_error(proc, "'nope'")


def test_one_feature_left_still_gets_its_pictures_and_ids_keep_their_own_column(
        capsys, data, tmp_path):
    # one feature (x1) left: the domain picture spreads it vertically (it used to crash)
    assert _run(capsys, data, tmp_path / "a", "--ignore", "customer,x2").returncode == 0
    assert (tmp_path / "a" / "domains.png").exists()
    # an id column called like a predictions.csv column keeps its values under "id:"
    src = pd.read_csv(data / "src.csv").rename(columns={"customer": "row"})
    tgt = pd.read_csv(data / "tgt.csv").rename(columns={"customer": "row"})
    src.to_csv(tmp_path / "s.csv", index=False)
    tgt.to_csv(tmp_path / "t.csv", index=False)
    proc = in_process(capsys, "run", "--source", str(tmp_path / "s.csv"), "--target",
                      str(tmp_path / "t.csv"), "--label", "y", "--ignore", "row",
                      "--output", str(tmp_path / "r"), *FAST)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(tmp_path / "r" / "predictions.csv")
    assert list(pred.columns[:3]) == ["row", "id:row", "prediction"]
    assert pred["id:row"].iloc[0] == 5000


def test_a_target_labelled_with_one_class_gets_a_warning_not_a_chance_verdict(capsys, data,
                                                                             tmp_path):
    tgt = pd.read_csv(data / "tgt.csv").assign(y="yes")
    tgt.to_csv(tmp_path / "t.csv", index=False)
    proc = in_process(capsys, "run", "--source", str(data / "src.csv"), "--target",
                      str(tmp_path / "t.csv"), "--label", "y", "--output",
                      str(tmp_path / "r"), *FAST)
    assert proc.returncode == 0 and "all hold one class ('yes')" in proc.stdout
    assert "chance" not in proc.stdout
