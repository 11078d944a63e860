"""Task samplers for meta-learning: few-shot episodes drawn from a distribution of tasks.

Meta-learning (メタ学習) learns *how to learn* from many small tasks T ~ p(T), each with
a support set (the few labelled examples the learner adapts on) and a query set (on which
the adapted learner is judged). A sampler is anything with ``sample(n_tasks, rng)``
returning a list of :class:`Task`; :class:`~transferkit.parameter.MAML` and
:class:`~transferkit.parameter.ProtoNet` meta-train on one and evaluate on another.

- :class:`RotatedMoonsTasks`: the seed tutorial's task family, Two Moons rotated by an
  angle in [-180°, 180°], with held-out (unseen) angle bands for evaluation.
- :class:`ArrayTasks`: N-way K-shot episodes from any labelled array ``(X, y)``.
- :class:`SinusoidTasks`: the regression family of Finn et al. (2017), y = A sin(x - φ).

Conventions: for classification ``shots`` and ``query`` count examples *per class*
(N-way K-shot); for regression they count examples per task (K-shot regression). The
labels of a classification episode are ``0 .. n_ways-1``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.datasets import make_moons

from .._validation import check_X, check_y
from ..errors import InputError, ParameterError

__all__ = ["Task", "TaskSampler", "RotatedMoonsTasks", "ArrayTasks", "SinusoidTasks",
           "stack_tasks", "as_generator", "rotate", "episode_rng"]


class Task(NamedTuple):
    """One few-shot task: a support set to adapt on and a query set to evaluate on."""

    X_support: np.ndarray
    y_support: np.ndarray
    X_query: np.ndarray
    y_query: np.ndarray


def as_generator(rng: Any) -> np.random.Generator:
    """A NumPy ``Generator`` from ``None``, an int, a sequence of ints or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(int(rng.randint(2**31 - 1)))
    return np.random.default_rng(rng)


class TaskSampler(BaseEstimator, ABC):
    """Base class of task samplers.

    Subclasses implement :meth:`sample` and set the properties ``n_features`` (input
    width), ``n_ways`` (classes per episode; ``None`` for regression) and ``task``
    (``"classification"`` or ``"regression"``). Being scikit-learn estimators in form,
    samplers support ``get_params``/``set_params``/``clone``, so a held-out copy is one
    ``clone(sampler).set_params(...)`` away.
    """

    task: str = "classification"

    @property
    @abstractmethod
    def n_features(self) -> int:
        """Number of input features of every task."""

    @property
    def n_ways(self) -> int | None:
        """Classes per episode (``None`` for regression)."""
        return None

    @abstractmethod
    def sample(self, n_tasks: int, rng: Any = None) -> list[Task]:
        """Draw ``n_tasks`` independent tasks using ``rng`` (int, Generator or None)."""


def stack_tasks(tasks: Sequence[Task]) -> tuple[np.ndarray, ...]:
    """Stack tasks of equal shapes into arrays ``(T, n_support, d)``, ``(T, n_support)``,
    ``(T, n_query, d)``, ``(T, n_query)`` for batched (vectorised) meta-learning."""
    tasks = list(tasks)
    if not tasks:
        raise InputError("no tasks given; pass at least one Task.")
    shapes = {tuple(np.shape(a) for a in t) for t in tasks}
    if len(shapes) != 1:
        raise InputError(
            "tasks have different support/query sizes "
            f"({sorted(shapes)[:3]}...); meta-batches need tasks of one shape, so draw them "
            "from one sampler (fixed shots and query).")
    return tuple(np.stack([np.asarray(t[i]) for t in tasks]) for i in range(4))


def _check_count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def rotate(X: np.ndarray, degrees: float | np.ndarray) -> np.ndarray:
    """Rotate 2-D points counter-clockwise by ``degrees`` about the origin.

    ``X`` is ``(n, 2)`` with a scalar angle, or ``(T, n, 2)`` with ``T`` angles. This is
    the rotation of :func:`~transferkit.datasets.make_two_moons_shift` (its ``Xt`` is
    ``rotate(Xs, rotation)``).
    """
    theta = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(theta), np.sin(theta)
    # [[c, -s], [s, c]] @ x for every point (and every task when angles are batched).
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    if R.ndim == 2:
        return X @ R.T
    return np.einsum("tij,tnj->tni", R, X)


def _circular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in degrees between angles on the circle (rotations by a and a+360 agree)."""
    d = np.abs(np.asarray(a)[..., None] - np.asarray(b)) % 360.0
    return np.minimum(d, 360.0 - d)


class RotatedMoonsTasks(TaskSampler):
    """Two Moons rotated by a random angle: the MAML experiment of the seed tutorial.

    Each task is scikit-learn's two moons shifted left by 0.5 (as in
    :func:`~transferkit.datasets.make_two_moons_shift`) and rotated counter-clockwise by
    an angle drawn uniformly from ``angle_range``; label 0 is the upper moon before
    rotation. The tasks share their shape but not their decision boundary, so no single
    classifier solves them all, while a good *initialisation* can adapt to any of them
    in a few gradient steps (Finn et al., 2017).

    Held-out rotations: ``held_out`` lists angles whose neighbourhood (a band
    ``held_out_width`` degrees wide, on the circle) is never drawn when ``split="train"``;
    ``split="held_out"`` draws only inside those bands. :meth:`held_out_sampler` returns
    that evaluation sampler, so meta-training and evaluation rotations are disjoint.

    Parameters
    ----------
    angle_range : (float, float), default=(-180, 180)
        Degrees.
    shots : int, default=10
        Support examples per class (the task is 2-way, so ``2 * shots`` in all).
    query : int, default=15
        Query examples per class.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise of ``make_moons``.
    held_out : sequence of float, default=()
        Centres (degrees) of the held-out bands.
    held_out_width : float, default=20
        Width of each band in degrees.
    split : {"train", "held_out"}, default="train"

    Examples
    --------
    >>> from transferkit.parameter.tasks import RotatedMoonsTasks
    >>> train = RotatedMoonsTasks(shots=10, held_out=(-90, 90))
    >>> test = train.held_out_sampler()
    >>> Xs, ys, Xq, yq = train.sample(1, rng=0)[0]
    >>> Xs.shape, Xq.shape
    ((20, 2), (30, 2))
    """

    def __init__(self, angle_range: tuple[float, float] = (-180.0, 180.0), shots: int = 10,
                 query: int = 15, noise: float = 0.1, held_out: Sequence[float] = (),
                 held_out_width: float = 20.0, split: str = "train") -> None:
        self.angle_range = angle_range
        self.shots = shots
        self.query = query
        self.noise = noise
        self.held_out = held_out
        self.held_out_width = held_out_width
        self.split = split

    @property
    def n_features(self) -> int:
        return 2

    @property
    def n_ways(self) -> int:
        return 2

    def _check(self) -> tuple[float, float, np.ndarray]:
        _check_count("shots", self.shots)
        _check_count("query", self.query, low=0)
        lo, hi = (float(a) for a in self.angle_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ParameterError(f"angle_range must be (low, high) with low < high, got "
                                 f"{self.angle_range!r}.")
        if self.split not in ("train", "held_out"):
            raise ParameterError(f"split must be 'train' or 'held_out', got {self.split!r}.")
        if not np.isfinite(self.noise) or self.noise < 0:
            raise ParameterError(f"noise must be >= 0, got {self.noise!r}.")
        centres = np.asarray(list(self.held_out), dtype=np.float64).reshape(-1)
        if centres.size and not (0 < self.held_out_width < 360):
            raise ParameterError(f"held_out_width must be in (0, 360) degrees, got "
                                 f"{self.held_out_width!r}.")
        if self.split == "held_out" and not centres.size:
            raise ParameterError("split='held_out' needs held_out angles, e.g. "
                                 "held_out=(-90, 90).")
        return lo, hi, centres

    def _in_bands(self, angles: np.ndarray, centres: np.ndarray) -> np.ndarray:
        if not centres.size:
            return np.zeros(angles.shape, dtype=bool)
        return (_circular_distance(angles, centres) <= self.held_out_width / 2).any(-1)

    def sample_angles(self, n_tasks: int, rng: Any = None) -> np.ndarray:
        """``n_tasks`` rotation angles (degrees) of this split, uniform over its angles."""
        n_tasks = _check_count("n_tasks", n_tasks)
        lo, hi, centres = self._check()
        rng = as_generator(rng)
        if self.split == "held_out":
            # Uniform over the union of the bands (clipped to the range): draw a band in
            # proportion to its length inside the range, then a point in it.
            grid = np.linspace(lo, hi, 3601)
            inside = grid[self._in_bands(grid, centres)]
            if not inside.size:
                raise ParameterError(f"no held-out band intersects angle_range "
                                     f"{self.angle_range!r}; move held_out inside it.")
        out = np.empty(0)
        for _ in range(1000):  # rejection sampling; a band covering all angles is caught below
            a = rng.uniform(lo, hi, size=2 * n_tasks + 8)
            keep = self._in_bands(a, centres)
            out = np.concatenate([out, a[keep if self.split == "held_out" else ~keep]])
            if out.size >= n_tasks:
                return out[:n_tasks]
        raise ParameterError(
            f"the {self.split!r} split leaves (almost) no angle in {self.angle_range!r}; "
            "use fewer or narrower held_out bands.")

    def tasks_at(self, angles: Sequence[float] | np.ndarray, rng: Any = None) -> list[Task]:
        """One task per given rotation angle (degrees), whatever the split."""
        self._check()
        angles = np.asarray(angles, dtype=np.float64).reshape(-1)
        if not np.isfinite(angles).all():
            raise InputError("angles must be finite numbers of degrees.")
        rng = as_generator(rng)
        T, k = angles.size, self.shots + self.query
        if T == 0:
            return []
        # One make_moons call for all tasks; its points are evenly spaced along each
        # moon, so every task takes a random subset of each class.
        X, y = make_moons(n_samples=(T * k, T * k), noise=self.noise, shuffle=False,
                          random_state=int(rng.integers(2**31 - 1)))
        X[:, 0] -= 0.5
        per_class = []
        for c in (0, 1):
            pts = X[y == c][rng.permutation(T * k)].reshape(T, k, 2)
            per_class.append(rotate(pts, angles))
        return self._assemble(per_class, rng)

    def _assemble(self, per_class: list[np.ndarray], rng: np.random.Generator) -> list[Task]:
        s = self.shots
        tasks = []
        for t in range(per_class[0].shape[0]):
            Xs = np.concatenate([p[t, :s] for p in per_class])
            Xq = np.concatenate([p[t, s:] for p in per_class])
            ys = np.repeat(np.arange(2), s)
            yq = np.repeat(np.arange(2), self.query)
            ps, pq = rng.permutation(len(ys)), rng.permutation(len(yq))
            tasks.append(Task(Xs[ps], ys[ps], Xq[pq], yq[pq]))
        return tasks

    def sample(self, n_tasks: int, rng: Any = None) -> list[Task]:
        rng = as_generator(rng)
        return self.tasks_at(self.sample_angles(n_tasks, rng), rng)

    def held_out_sampler(self) -> RotatedMoonsTasks:
        """The same tasks restricted to the held-out bands (``split="held_out"``)."""
        params = self.get_params()
        params["split"] = "held_out"
        return type(self)(**params)


class ArrayTasks(TaskSampler):
    """N-way K-shot classification episodes drawn from a labelled array.

    Each episode picks ``n_ways`` classes at random among ``classes`` (default: every
    class with at least ``shots + query`` examples), then ``shots`` support and ``query``
    query examples of each without replacement, and relabels the chosen classes
    ``0 .. n_ways-1`` in random order, as in the episodes of Vinyals et al. (2016) and
    Snell et al. (2017). For meta-learning proper, meta-train and evaluate on disjoint
    classes: two samplers over the same data with different ``classes``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_ways : int, default=5
    shots : int, default=5
    query : int, default=15
    classes : sequence or None, default=None
        The labels episodes may use.

    Notes
    -----
    ``X`` and ``y`` are validated (finite, matching lengths) and kept as float/label
    arrays when the sampler is built.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> train = ArrayTasks(X, y, n_ways=5, shots=5, classes=range(5))
    >>> task = train.sample(1, rng=0)[0]
    >>> task.X_support.shape, task.X_query.shape
    ((25, 64), (75, 64))
    """

    def __init__(self, X: Any, y: Any, n_ways: int = 5, shots: int = 5, query: int = 15,
                 classes: Sequence[Any] | None = None) -> None:
        self.X = check_X(X, "X")
        self.y = check_y(y, self.X.shape[0], "y")
        self.n_ways = n_ways
        self.shots = shots
        self.query = query
        self.classes = classes

    # ``n_ways`` is a constructor parameter here; shadow the base-class property.
    n_ways = None  # type: ignore[assignment]

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def _pools(self) -> list[np.ndarray]:
        key = (id(self.X), id(self.y), self.shots, self.query, repr(self.classes))
        cache = getattr(self, "_pool_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        n_ways = _check_count("n_ways", self.n_ways, low=2)
        need = _check_count("shots", self.shots) + _check_count("query", self.query, low=0)
        labels, inverse = np.unique(self.y, return_inverse=True)
        wanted = labels if self.classes is None else np.asarray(list(self.classes))
        missing = [c for c in wanted if c not in set(labels.tolist())]
        if missing:
            raise ParameterError(f"classes {missing[:5]} do not occur in y.")
        pools = []
        for c in wanted:
            idx = np.flatnonzero(inverse == np.searchsorted(labels, c))
            if idx.size >= need:
                pools.append(idx)
            elif self.classes is not None:
                raise InputError(f"class {c!r} has {idx.size} examples but an episode needs "
                                 f"shots + query = {need}; lower shots or query.")
        if len(pools) < n_ways:
            raise InputError(
                f"only {len(pools)} classes have the shots + query = {need} examples an "
                f"episode needs, fewer than n_ways={n_ways}; lower n_ways, shots or query.")
        self._pool_cache = (key, pools)
        return pools

    def sample(self, n_tasks: int, rng: Any = None) -> list[Task]:
        n_tasks = _check_count("n_tasks", n_tasks)
        pools = self._pools()
        rng = as_generator(rng)
        n, s, q = int(self.n_ways), int(self.shots), int(self.query)
        tasks = []
        for _ in range(n_tasks):
            chosen = rng.choice(len(pools), size=n, replace=False)
            picks = np.stack([rng.choice(pools[c], size=s + q, replace=False) for c in chosen])
            sup, qry = picks[:, :s].reshape(-1), picks[:, s:].reshape(-1)
            ys, yq = np.repeat(np.arange(n), s), np.repeat(np.arange(n), q)
            ps, pq = rng.permutation(sup.size), rng.permutation(qry.size)
            tasks.append(Task(self.X[sup[ps]], ys[ps], self.X[qry[pq]], yq[pq]))
        return tasks


class SinusoidTasks(TaskSampler):
    """Few-shot regression on sinusoids, the first benchmark of Finn et al. (2017).

    A task is y = A sin(x - φ) with amplitude A ~ U(``amplitude_range``) and phase
    φ ~ U(``phase_range``); inputs x ~ U(``x_range``). ``shots`` support and ``query``
    query points per task.

    Parameters
    ----------
    shots : int, default=10
    query : int, default=10
    amplitude_range : (float, float), default=(0.1, 5.0)
    phase_range : (float, float), default=(0, π)
    x_range : (float, float), default=(-5, 5)
    """

    task = "regression"

    def __init__(self, shots: int = 10, query: int = 10,
                 amplitude_range: tuple[float, float] = (0.1, 5.0),
                 phase_range: tuple[float, float] = (0.0, float(np.pi)),
                 x_range: tuple[float, float] = (-5.0, 5.0)) -> None:
        self.shots = shots
        self.query = query
        self.amplitude_range = amplitude_range
        self.phase_range = phase_range
        self.x_range = x_range

    @property
    def n_features(self) -> int:
        return 1

    def sample(self, n_tasks: int, rng: Any = None) -> list[Task]:
        n_tasks = _check_count("n_tasks", n_tasks)
        s = _check_count("shots", self.shots)
        q = _check_count("query", self.query, low=0)
        rng = as_generator(rng)
        amp = rng.uniform(*self.amplitude_range, size=(n_tasks, 1))
        phase = rng.uniform(*self.phase_range, size=(n_tasks, 1))
        x = rng.uniform(*self.x_range, size=(n_tasks, s + q))
        y = amp * np.sin(x - phase)
        return [Task(x[t, :s, None], y[t, :s], x[t, s:, None], y[t, s:])
                for t in range(n_tasks)]


def episode_rng(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    """The generator of meta-training step ``step``: a pure function of (seed, step, rank),
    so that a resumed run draws the same tasks as an uninterrupted one."""
    return np.random.default_rng([int(seed), int(step), int(rank)])
