"""Torch Datasets and DataLoaders as domains, so that data need not fit in memory.

The deep methods take a ``torch.utils.data.Dataset`` or ``DataLoader`` in place of
arrays: source items are ``(x, y)``, target items ``x`` or ``(x, y)`` (a NaN label, or a
negative one that is no source class, marks an unlabelled row: :func:`unlabelled`). One
streaming pass gathers what fitting needs before training (row counts, per-feature means
and variances, the classes or the label scale); the :class:`~transferkit.nn.Trainer` then
draws minibatches from the loaders (:class:`LoaderDomain`) instead of indexing tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError

__all__ = ["is_torch_data", "as_loader", "split_item", "iter_batches", "Moments", "scan",
           "unlabelled", "moments_scaling", "LoaderDomain"]

#: Above this many distinct integral labels a label column is read as real-valued.
MAX_CLASSES = 10_000


def is_torch_data(obj: Any) -> bool:
    """Whether ``obj`` is a torch ``Dataset`` or ``DataLoader`` (not a tensor or array)."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    return isinstance(obj, (Dataset, DataLoader, IterableDataset))


def as_loader(obj: Any, batch_size: int | None, seed: int) -> torch.utils.data.DataLoader:
    """``obj`` itself if it is a DataLoader, else a shuffling one over the Dataset
    (``batch_size`` None: the whole Dataset in one batch), seeded by ``seed``."""
    from torch.utils.data import DataLoader, IterableDataset

    if isinstance(obj, DataLoader):
        return obj
    if isinstance(obj, IterableDataset):
        raise InputError("an IterableDataset has no length, so epochs and batches cannot be "
                         "planned; wrap it in a DataLoader with a sized Dataset, or pass a "
                         "map-style Dataset.")
    n = len(obj)
    return DataLoader(obj, batch_size=n if batch_size is None else int(batch_size),
                      shuffle=True, generator=torch.Generator().manual_seed(seed))


def split_item(batch: Any, name: str, needs_label: bool) -> tuple[torch.Tensor, Any]:
    """``(x, y)`` of a collated batch (``y`` None when the items carry no label), with
    ``x`` flattened to (rows, features), float64."""
    if isinstance(batch, (list, tuple)):
        if len(batch) not in (1, 2):
            raise InputError(f"{name} items must be x or (x, y); got {len(batch)} parts.")
        x, y = batch[0], (batch[1] if len(batch) == 2 else None)
    else:
        x, y = batch, None
    if needs_label and y is None:
        raise InputError(f"{name} items must be (x, y) pairs: the source needs its labels.")
    x = torch.as_tensor(x)
    if not x.dtype.is_floating_point and x.dtype not in (torch.uint8, torch.int8, torch.int16,
                                                         torch.int32, torch.int64, torch.bool):
        raise InputError(f"{name} features must be numeric tensors; got {x.dtype}.")
    x = x.reshape(x.shape[0], -1).double()
    return x, (None if y is None else torch.as_tensor(y).reshape(-1))


def iter_batches(X: Any, name: str = "X", batch_size: int = 4096
                 ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """``(x, y)`` NumPy batches of a Dataset or DataLoader, in its order (a Dataset is
    read in order; a shuffling DataLoader gives its rows in its own order)."""
    from torch.utils.data import DataLoader

    loader = X if isinstance(X, DataLoader) else DataLoader(X, batch_size=batch_size)
    for batch in loader:
        x, y = split_item(batch, name, needs_label=False)
        yield x.numpy(), (None if y is None else y.numpy())


def moments_scaling(*moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation pooled over ``moments`` (a constant
    feature's deviation taken as 1, as for arrays)."""
    n, mean, m2 = 0, 0.0, 0.0
    for m in moments:
        n, mean, m2 = _merge(n, mean, m2, m.n, m.mean, m.m2)
    std = np.sqrt(m2 / n)
    return mean, np.where(std > 1e-12, std, 1.0)


def _merge(n_a: int, mean_a: Any, m2_a: Any, n_b: int, mean_b: Any, m2_b: Any) -> tuple:
    """Count, mean and sum of squared deviations of two samples pooled (Chan, Golub and
    LeVeque's update: no precision is lost to a large offset, as it is in Σx² − n·mean²)."""
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)


@dataclass
class Moments:
    """What one pass over a domain learns: rows, per-feature mean and sum of squared
    deviations (float64, merged batch by batch, :func:`_merge`), and the labels seen
    (their distinct values while they look like classes, their mean and squared
    deviations)."""

    n: int = 0
    n_features: int | None = None
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    labels: set = field(default_factory=set)
    integral: bool = True
    n_labelled: int = 0
    y_mean: float = 0.0
    y_m2: float = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor | None, name: str) -> None:
        xd = x.double()
        if not torch.isfinite(xd).all():
            raise InputError(f"{name} contains NaN or infinity; impute or drop those values "
                             "before fitting.")
        if self.n_features is None:
            self.n_features = x.shape[1]
            self.mean, self.m2 = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        elif x.shape[1] != self.n_features:
            raise InputError(f"{name} items have {x.shape[1]} features after {self.n_features} "
                             "in earlier batches; every item needs the same shape.")
        batch_mean = xd.mean(0)
        self.n, self.mean, self.m2 = _merge(self.n, self.mean, self.m2, x.shape[0],
                                            batch_mean.numpy(),
                                            ((xd - batch_mean) ** 2).sum(0).numpy())
        if y is None:
            return
        known = y.double()
        known = known[~torch.isnan(known)]
        if known.numel():
            mean = float(known.mean())
            self.n_labelled, self.y_mean, self.y_m2 = _merge(
                self.n_labelled, self.y_mean, self.y_m2, int(known.numel()), mean,
                float(((known - mean) ** 2).sum()))
        if self.integral:
            if not bool((known == known.round()).all()):
                self.integral = False
                self.labels.clear()
            else:
                self.labels.update(int(v) for v in torch.unique(known).tolist())
                if len(self.labels) > MAX_CLASSES:
                    self.integral, self.labels = False, set()


def unlabelled(y: torch.Tensor, classes: Any) -> torch.Tensor:
    """Where target labels ``y`` mark a row without a label: NaN, or (with the source's
    ``classes``, i.e. for classification) a negative value that is not a source class."""
    y = y.double()
    out = torch.isnan(y)
    if classes is not None:
        known = torch.as_tensor(sorted(classes), dtype=torch.float64)
        out |= (y < 0) & ~torch.isin(y, known)
    return out


def scan(loader: Any, name: str, needs_label: bool, classes: Any = None) -> Moments:
    """One pass over ``loader``: its :class:`Moments`. Source labels (``needs_label``)
    must all be there; target labels may be missing (:func:`unlabelled`, with the
    source's ``classes`` for classification)."""
    m = Moments()
    for batch in loader:
        x, y = split_item(batch, name, needs_label)
        if needs_label and y.is_floating_point() and bool(torch.isnan(y).any()):
            raise InputError(f"{name} has items without a label (NaN); every source item "
                             "needs one.")
        if y is not None and not needs_label:
            y = y.double().masked_fill(unlabelled(y, classes), float("nan"))
        m.add(x, y, name)
    if m.n == 0:
        raise InputError(f"{name} has no samples; each domain needs at least one row.")
    return m


class LoaderDomain:
    """One domain of a :class:`~transferkit.nn.Trainer` fit read from a DataLoader.

    ``transform(batch, device)`` turns a collated batch into the tensors the task reads.
    The Trainer runs as many steps per epoch as its largest domain needs; a loader with
    fewer batches starts over when it runs out.
    """

    def __init__(self, loader: Any, transform: Callable[[Any, torch.device], tuple],
                 seed: int | None = None) -> None:
        self.loader, self.transform, self.seed = loader, transform, seed
        self._it: Iterator | None = None

    @property
    def steps(self) -> int:
        return len(self.loader)

    def start_epoch(self, epoch: int) -> None:
        """Start the epoch's pass; with ``seed`` (a loader transferkit built), its shuffle
        is reseeded from (seed, epoch), so a run resumed from a checkpoint draws the
        same batches as an uninterrupted one."""
        generator = getattr(self.loader, "generator", None)
        if self.seed is not None and generator is not None:
            generator.manual_seed(self.seed * 1_000_003 + epoch)
        self._it = iter(self.loader)

    def next_batch(self, device: torch.device) -> tuple:
        try:
            batch = next(self._it)  # type: ignore[arg-type]
        except StopIteration:
            self._it = iter(self.loader)
            batch = next(self._it)
        return self.transform(batch, device)
