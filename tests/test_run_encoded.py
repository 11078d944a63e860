"""`transferkit run` on image folders and a text column: a pretrained encoder comes first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from transferkit.datasets.images import load_image_folder
from transferkit.pipeline import _load


class _FakeEncoder:
    """Stands in for a pretrained encoder: 3 features from the text length / pixels."""

    name = "fake"

    def __init__(self, name=None):
        pass

    def transform(self, items):
        rows = []
        for x in items:
            if isinstance(x, str) and x.endswith(".png"):
                from PIL import Image

                a = np.asarray(Image.open(x), dtype=float)
                rows.append([a.mean(), a.std(), a.max()])
            else:
                rows.append([len(x), x.count("good"), x.count("bad")])
        return np.asarray(rows, dtype=float)


@pytest.fixture
def fake_encoders(monkeypatch):
    pytest.importorskip("transferkit.pretrained")
    import transferkit.pretrained as pre

    monkeypatch.setattr(pre, "TextEncoder", _FakeEncoder, raising=False)
    monkeypatch.setattr(pre, "ImageEncoder", _FakeEncoder, raising=False)


def _images(root, spec):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for sub, n, level in spec:
        folder = root / sub if sub else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = np.clip(rng.normal(level, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(folder / f"{i}.png")


def test_image_folder_layouts(tmp_path):
    _images(tmp_path / "s", [("cat", 3, 50), ("dog", 2, 200)])
    _images(tmp_path / "t", [("", 4, 60)])
    paths, labels = load_image_folder(tmp_path / "s")
    assert len(paths) == 5 and list(labels) == ["cat"] * 3 + ["dog"] * 2
    assert load_image_folder(tmp_path / "t")[1] is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(tk.errors.InputError, match="no images"):
        load_image_folder(tmp_path / "empty")


def test_load_encodes_image_folders(tmp_path, fake_encoders):
    _images(tmp_path / "s", [("cat", 6, 50), ("dog", 6, 200)])
    _images(tmp_path / "t", [("cat", 4, 70), ("dog", 4, 180), ("", 3, 120)])
    data = _load(str(tmp_path / "s"), str(tmp_path / "t"), None)
    assert data["Xs"].shape == (12, 3) and data["Xt"].shape == (11, 3)
    assert sum(v is None for v in data["yt"]) == 3
    assert "image folder" in data["encoder"]


def test_run_on_a_text_column(tmp_path, fake_encoders):
    rng = np.random.default_rng(0)

    def table(n, shift):
        words = rng.choice(["good", "bad"], n)
        text = [f"{w} " * int(k) + "x" * int(shift) for w, k in zip(words, rng.integers(1, 4, n))]
        return pd.DataFrame({"review": text, "label": (words == "good").astype(int)})

    summary = tk.pipeline.run(tmp_path / "out", table(60, 0), table(40, 5), "label",
                              text_column="review", methods=["CORAL"], seeds=1,
                              estimator="linear", progress=False, n_jobs=1)
    assert summary["data"]["encoder"].startswith("fake (text column 'review')")
    assert summary["data"]["n_features"] == 3
    assert summary["methods"]["SourceOnly"]["target_accuracy_mean"] > 0.9
    _assert_end_to_end(tmp_path / "out", summary)


def _assert_end_to_end(out, summary):
    """diagnose -> compare -> select -> verdict -> model, predictions and the report."""
    assert summary["selected_method"] in summary["methods"]
    assert summary["verdict"]["decision"] in ("transfer_helps", "transfer_hurts", "no_shift",
                                              "no_gain")
    assert summary["verdict"]["headline"] and summary["diagnostics"]["drift"]
    assert (out / "predictions.csv").exists() and (out / "model").is_dir()
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.index(summary["verdict"]["headline"][:20]) < html.index("Shift between") \
        < html.index("Leaderboard")


def test_run_on_image_folders(tmp_path, fake_encoders):
    _images(tmp_path / "s", [("cat", 8, 50), ("dog", 8, 200)])
    _images(tmp_path / "t", [("cat", 6, 80), ("dog", 6, 170)])
    summary = tk.pipeline.run(tmp_path / "out", str(tmp_path / "s"), str(tmp_path / "t"),
                              methods=["CORAL"], seeds=2, estimator="linear", progress=False,
                              n_jobs=1)
    assert "image folder" in summary["data"]["encoder"]
    assert summary["verdict"]["verified"]  # the target subfolders label the target
    _assert_end_to_end(tmp_path / "out", summary)


def test_text_column_errors(fake_encoders):
    df = pd.DataFrame({"t": ["a", "b"], "y": [0, 1]})
    with pytest.raises(tk.errors.InputError, match="no column 'text'"):
        _load(df, df, "y", text_column="text")
    with pytest.raises(tk.errors.InputError, match="needs source and target"):
        _load(None, None, None, text_column="t")


def test_diagnose_command_reads_a_text_column_and_ignores_columns(fake_encoders, tmp_path,
                                                                  capsys):
    from transferkit.cli import main

    rng = np.random.default_rng(0)
    def table(word):
        return pd.DataFrame({"id": range(40), "stars": rng.integers(1, 6, 40),
                             "review": [word * int(k) for k in rng.integers(1, 4, 40)]})

    src, tgt = table("good "), table("bad ")
    src.to_csv(tmp_path / "s.csv", index=False)
    tgt.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(SystemExit) as info:
        main(["diagnose", "--source", str(tmp_path / "s.csv"), "--target",
              str(tmp_path / "t.csv"), "--text-column", "review", "--json",
              str(tmp_path / "d.json")])
    assert info.value.code in (0, None)
    import json

    report = json.loads((tmp_path / "d.json").read_text())
    assert {d["feature"] for d in report["drift"]} == {"fake[0]", "fake[1]", "fake[2]"}
    assert report["shift_detected"]
    with pytest.raises(SystemExit) as info:
        main(["diagnose", "--source", str(tmp_path / "s.csv"), "--target",
              str(tmp_path / "t.csv"), "--ignore", "review", "--json",
              str(tmp_path / "e.json")])
    features = {d["feature"] for d in json.loads((tmp_path / "e.json").read_text())["drift"]}
    assert features == {"stars"}  # 'id' is left out by its name, 'review' by --ignore
