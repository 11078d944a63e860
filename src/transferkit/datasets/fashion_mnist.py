"""Fashion-MNIST, read from the idx files that the Debian package ``dataset-fashion-mnist`` ships.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) is a drop-in replacement for MNIST: 70 000
grey-scale 28x28 images of Zalando articles in 10 balanced classes (60 000 for training,
10 000 for testing). In transferkit it is a real image source or target: for example
Fashion-MNIST against a transformed copy of itself, or as the data set a CNN is
pretrained on before fine-tuning elsewhere.

The files are read with NumPy only (no torchvision, no download): the loader parses the
idx format (magic number, big-endian dimensions) of the plain or gzip-compressed files.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from ..errors import DatasetUnavailableError, ParameterError

__all__ = ["load_fashion_mnist", "FASHION_MNIST_CLASSES", "FASHION_MNIST_PATH",
           "DatasetUnavailableError"]

#: where ``apt-get install dataset-fashion-mnist`` puts the idx files (Debian/Ubuntu).
FASHION_MNIST_PATH = Path("/usr/share/datasets/fashion-mnist")

#: class names, indexed by label (from the data set's README).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

_INSTALL_HINT = ("install it with `apt-get install dataset-fashion-mnist` (as root, on "
                 "Debian/Ubuntu), or pass path= a folder holding the four idx files "
                 "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                 "t10k-labels-idx1-ubyte, each optionally .gz) from "
                 "https://github.com/zalandoresearch/fashion-mnist")

#: idx type code (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (plain or gzip-compressed) into an array of native byte order.

    The idx format: two zero bytes, a type code, the number of dimensions ``k``, then ``k``
    big-endian unsigned 32-bit sizes, then the data in C order, big-endian.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetUnavailableError(f"cannot read {str(path)!r} ({exc}); the file is "
                                      f"damaged: reinstall it, or {_INSTALL_HINT}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetUnavailableError(f"{str(path)!r} is not an idx file (bad magic number "
                                      f"{raw[:4].hex() or 'empty'}); {_INSTALL_HINT}.")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DatasetUnavailableError(f"{str(path)!r} is truncated (header of {ndim} "
                                      f"dimensions incomplete); {_INSTALL_HINT}.")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetUnavailableError(f"{str(path)!r} holds {len(raw)} bytes but its header "
                                      f"{shape} needs {expected}; the file is truncated or "
                                      f"damaged: {_INSTALL_HINT}.")
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    if not folder.is_dir():
        where = f"the folder {str(folder)!r} does not exist"
    else:
        where = f"{str(folder)!r} has neither {stem!r} nor {stem + '.gz'!r}"
    raise DatasetUnavailableError(f"Fashion-MNIST not found: {where}; {_INSTALL_HINT}.")


def _read_split(folder: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(_find(folder, f"{kind}-images-idx3-ubyte"))
    labels = _read_idx(_find(folder, f"{kind}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetUnavailableError(f"the {kind} images in {str(folder)!r} have shape "
                                      f"{images.shape} and type {images.dtype}, not "
                                      f"(n, 28, 28) uint8; {_INSTALL_HINT}.")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetUnavailableError(f"the {kind} labels in {str(folder)!r} have shape "
                                      f"{labels.shape} for {images.shape[0]} images; "
                                      f"{_INSTALL_HINT}.")
    if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise DatasetUnavailableError(f"the {kind} labels in {str(folder)!r} go up to "
                                      f"{int(labels.max())}; Fashion-MNIST has 10 classes.")
    return images, labels.astype(np.int64)


def _check_n(n: int | None, name: str, available: int | None = None) -> int | None:
    """``n`` as an int, or None; ``available=None`` checks the type and sign only."""
    if n is None:
        return None
    top = "the size of the split" if available is None else str(available)
    if (isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1
            or (available is not None and n > available)):
        raise ParameterError(f"{name} must be an integer from 1 to {top} (or None for the "
                             f"whole split), got {n!r}.")
    return int(n)


def _stratified_indices(y: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """``n`` indices drawn without replacement, each class in proportion to its frequency.

    Class quotas are the proportional shares rounded by largest remainder (ties broken at
    random), so they sum to ``n`` exactly. The indices are returned sorted, which keeps
    the file's own (already shuffled) order.
    """
    classes, counts = np.unique(y, return_counts=True)
    share = counts * (n / len(y))
    quota = np.floor(share).astype(np.int64)
    left = n - int(quota.sum())
    if left:
        # Largest remainders first; the random key breaks ties reproducibly.
        order = np.lexsort((rng.random_sample(len(classes)), -(share - quota)))
        quota[order[:left]] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=q, replace=False)
              for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(picked))


def load_fashion_mnist(n_train: int | None = None, n_test: int | None = None,
                       random_state: int | np.random.RandomState | None = 0,
                       path: str | os.PathLike | None = None, flatten: bool = False,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao et al. 2017) from the files of ``dataset-fashion-mnist``.

    70 000 grey-scale images of clothing, 28x28 pixels, in 10 classes (see
    :data:`FASHION_MNIST_CLASSES`): the official split of 60 000 training images (6 000
    per class) and 10 000 test images (1 000 per class). Setting: a real, balanced
    10-class image problem; build a shifted target from it (rotate, add noise, invert) or
    use it to pretrain a network for parameter transfer.

    Parameters
    ----------
    n_train, n_test : int or None, default=None
        Draw this many images from the training / test split, without replacement and
        stratified by class (each class keeps its share, quotas rounded by largest
        remainder); ``None`` keeps the whole split. The drawn images stay in file order.
    random_state : int, RandomState or None, default=0
        Seed of the subsample. The training and the test draws use separate streams
        derived from it, so changing ``n_train`` does not change the test images.
    path : str, path-like or None, default=None
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or with
        ``.gz``. ``None`` means :data:`FASHION_MNIST_PATH`
        (``/usr/share/datasets/fashion-mnist``, where the Debian package puts them).
    flatten : bool, default=False
        Return images as rows of 784 pixels, shape ``(n, 784)``, the layout that
        scikit-learn estimators and the shallow methods need. By default the images keep
        their shape ``(n, 28, 28)`` (add a channel axis for a CNN:
        ``X[:, None]``).

    Returns
    -------
    X_train : ndarray of float32, shape (n_train, 28, 28) or (n_train, 784)
        Pixel intensities scaled from 0..255 to [0, 1]; 0 is background.
    y_train : ndarray of int64, shape (n_train,)
        Class labels 0..9.
    X_test : ndarray of float32, shape (n_test, 28, 28) or (n_test, 784)
    y_test : ndarray of int64, shape (n_test,)

    Raises
    ------
    DatasetUnavailableError
        The files are missing (the message says how to install them) or damaged.
    ParameterError
        ``n_train`` or ``n_test`` is not a whole number within the split's size.

    References
    ----------
    H. Xiao, K. Rasul and R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for
    Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.

    Examples
    --------
    >>> X, y, Xte, yte = load_fashion_mnist(n_train=1000, n_test=200)  # doctest: +SKIP
    >>> X.shape, FASHION_MNIST_CLASSES[y[0]]  # doctest: +SKIP
    ((1000, 28, 28), 'Ankle boot')
    """
    folder = FASHION_MNIST_PATH if path is None else Path(path)
    if not isinstance(flatten, (bool, np.bool_)):
        raise ParameterError(f"flatten must be True or False, got {flatten!r}.")
    _check_n(n_train, "n_train")
    _check_n(n_test, "n_test")
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=2)
    out: list[np.ndarray] = []
    for kind, n, seed in (("train", n_train, seeds[0]), ("t10k", n_test, seeds[1])):
        images, labels = _read_split(folder, kind)
        n = _check_n(n, "n_train" if kind == "train" else "n_test", len(labels))
        if n is not None and n < len(labels):
            idx = _stratified_indices(labels, n, np.random.RandomState(seed))
            images, labels = images[idx], labels[idx]
        X = images.astype(np.float32)
        X /= np.float32(255.0)
        out += [X.reshape(len(X), -1) if flatten else X, labels]
    return out[0], out[1], out[2], out[3]
