"""Tables as domains: loading, label handling, consistent one-hot encoding, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from transferkit import errors
from transferkit.datasets import encode_features, load_table, split_domains


@pytest.fixture
def frames():
    source = pd.DataFrame({"id": [10, 11, 12, 13], "age": [30, 40, 50, 60],
                           "colour": ["red", "blue", "red", "blue"],
                           "label": ["yes", "no", "yes", "no"]})
    target = pd.DataFrame({"id": [20, 21, 22], "age": [35.5, 45.0, 70.0],
                           "colour": ["green", "red", "blue"], "label": ["no", None, "yes"]})
    return source, target


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".tsv", ".csv.gz"])
def test_load_table_round_trip(tmp_path, frames, suffix):
    source, _ = frames
    path = tmp_path / f"source{suffix}"
    if suffix == ".parquet":
        source.to_parquet(path, index=False)
    else:
        source.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    df = load_table(path)
    pd.testing.assert_frame_equal(df, source, check_dtype=False)


def test_load_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_table(tmp_path / "missing.csv")
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    with pytest.raises(errors.InputError, match=r"unknown file type '\.xlsx'.*\.csv"):
        load_table(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(errors.InputError, match="empty"):
        load_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(errors.InputError, match="no rows"):
        load_table(header_only)


def test_missing_label_column_names_it_and_lists_the_columns(frames):
    source, target = frames
    with pytest.raises(errors.MissingColumnError) as info:
        split_domains(source, target, "outcome")
    msg = str(info.value)
    assert "'outcome'" in msg and "age" in msg and "colour" in msg and "label" in msg
    assert isinstance(info.value, ValueError)


def test_one_hot_is_consistent_across_domains(frames):
    source, target = frames
    Xs, ys, Xt, yt, names = split_domains(source, target, "label")
    # 'green' appears only in the target and still gets a column in both domains.
    assert names == ["age", "colour=blue", "colour=green", "colour=red"]
    assert Xs.shape == (4, 4) and Xt.shape == (3, 4)
    np.testing.assert_array_equal(Xs[:, 1:], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(Xt[:, 1:], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_allclose(Xt[:, 0], [35.5, 45.0, 70.0])
    assert "id" not in names  # ids are not features
    # New data re-encoded with the same layout; an unseen category is all zeros.
    new = pd.DataFrame({"colour": ["purple", "red"], "age": [1, 2]})
    np.testing.assert_array_equal(encode_features(new, names), [[1, 0, 0, 0], [2, 0, 0, 1]])


def test_partially_labelled_target(frames):
    source, target = frames
    Xs, ys, Xt, yt, _ = split_domains(source, target, "label")
    assert list(ys) == ["yes", "no", "yes", "no"]
    assert yt[0] == "no" and yt[2] == "yes" and pd.isna(yt[1])
    # The result goes straight into fit: the empty cell is an unlabelled target row.
    m = tk.make("SourceTarget", random_state=0).fit(Xs, ys, Xt, yt)
    assert set(m.predict(Xt)) <= {"yes", "no"}


def test_numeric_labels_with_blanks_become_nan(tmp_path):
    src = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]})
    tgt = pd.DataFrame({"x": [0.5, 1.5, 2.5], "y": [1, None, 0]})
    tgt.to_csv(tmp_path / "t.csv", index=False)
    Xs, ys, Xt, yt, _ = split_domains(src, load_table(tmp_path / "t.csv"), "y")
    # Integer classes stay integers (pandas reads the blank as NaN and the column as float).
    assert np.isnan(yt[1]) and yt[0] == 1 and yt[2] == 0 and type(yt[0]) is int
    m = tk.make("SourceTarget", random_state=0).fit(Xs, ys, Xt, yt)
    assert m.classes_.tolist() == [0, 1] and str(m.classes_[1]) == "1"
    # Real-valued labels with a blank stay real-valued.
    tgt_real = pd.DataFrame({"x": [0.5, 1.5], "y": [0.25, None]})
    _, _, _, yt, _ = split_domains(src.assign(y=[0.1, 0.2, 0.3, 0.4]), tgt_real, "y")
    assert yt.dtype == np.float64 and np.isnan(yt[1])


def test_target_without_label_column_is_unlabelled(frames):
    source, target = frames
    Xs, ys, Xt, yt, _ = split_domains(source, target.drop(columns="label"), "label")
    assert yt.shape == (3,) and np.isnan(yt.astype(float)).all()


def test_columns_missing_from_one_domain_are_named(frames):
    source, target = frames
    with pytest.raises(errors.FeatureMismatchError, match="target lacks 'colour'"):
        split_domains(source, target.drop(columns="colour"), "label")
    with pytest.raises(errors.FeatureMismatchError, match="source lacks 'extra'"):
        split_domains(source, target.assign(extra=1.0), "label")


def test_bad_cells_are_reported_by_column(frames):
    source, target = frames
    with pytest.raises(errors.InputError, match="'age'.*empty"):
        split_domains(source, target.assign(age=[1.0, np.nan, 2.0]), "label")
    with pytest.raises(errors.InputError, match="'age'.*'old'"):
        split_domains(source, target.assign(age=["1", "old", "2"]), "label")
    with pytest.raises(errors.InputError, match="source label column 'label'"):
        split_domains(source.assign(label=["yes", None, "no", "no"]), target, "label")
