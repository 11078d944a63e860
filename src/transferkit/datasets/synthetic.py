"""Generators of source/target pairs whose shift is known.

All return ``Xs, ys, Xt, yt`` (NumPy arrays) so that ``fit(Xs, ys, Xt)`` and
``score(Xt, yt)`` read naturally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits, make_moons
from sklearn.utils import check_random_state


def make_two_moons_shift(n_samples: int = 100, rotation: float = 30, noise: float = 0.05,
                         random_state: int | None = 0):
    """The Two Moons domain-adaptation problem of the seed tutorial (``make_moons_da``).

    The source is scikit-learn's two moons shifted left by 0.5; the target is the same
    points rotated by ``rotation`` degrees about the origin, with the same labels
    (covariate shift: P(Y|X) is assumed unchanged, only its frame rotates).

    Parameters
    ----------
    n_samples : int, default=100
        Points per domain.
    rotation : float, default=30
        Rotation of the target in degrees.
    noise : float, default=0.05
        Standard deviation of the Gaussian noise of ``make_moons``.
    random_state : int or None, default=0

    Returns
    -------
    Xs, ys, Xt, yt : ndarray
        Source features (n, 2), source labels (n,), target features, target labels.
    """
    Xs, ys = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    Xs[:, 0] -= 0.5
    theta = np.radians(-rotation)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array(((c, -s), (s, c)))
    Xt = Xs.dot(rot)
    return Xs, ys, Xt, ys.copy()


def make_heterogeneous_moons(n_samples: int = 100, rotation: float = 30, noise: float = 0.05,
                             random_state: int | None = 0):
    """The seed tutorial's heterogeneous Two Moons problem (HeDANN's experiment).

    The source is :func:`make_two_moons_shift`'s source, in 2-D. The target is the same
    points in 3-D: each (x, y) becomes (x, y, 0), turned by ``rotation`` degrees
    counter-clockwise in the XZ plane, i.e. (x cos θ, y, x sin θ). The labels are the
    same, the feature spaces differ (2 columns against 3), so only a heterogeneous
    method (:mod:`transferkit.heterogeneous`) can use the source.

    Parameters
    ----------
    n_samples : int, default=100
        Points per domain.
    rotation : float, default=30
        Rotation of the target in the XZ plane, in degrees.
    noise : float, default=0.05
    random_state : int or None, default=0

    Returns
    -------
    Xs, ys, Xt, yt : ndarray
        Source features (n, 2), source labels (n,), target features (n, 3), target labels.
    """
    Xs, ys, _, _ = make_two_moons_shift(n_samples, rotation=0, noise=noise,
                                        random_state=random_state)
    theta = np.radians(rotation)
    Xt = np.column_stack([Xs[:, 0] * np.cos(theta), Xs[:, 1], Xs[:, 0] * np.sin(theta)])
    return Xs, ys, Xt, ys.copy()


@dataclass(frozen=True)
class DensityRatio:
    """The true ratio p_target(x) / p_source(x) of two isotropic Gaussians.

    Source N(0, I); target N(``mean``, ``scale``² I). Call it on an array of points.
    """

    mean: np.ndarray
    scale: float

    def log(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        d = X.shape[1]
        log_pt = -0.5 * np.sum((X - self.mean) ** 2, axis=1) / self.scale**2 - d * np.log(
            self.scale)
        log_ps = -0.5 * np.sum(X**2, axis=1)
        return log_pt - log_ps

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.exp(self.log(X))


def make_covariate_shift(n_source: int = 2000, n_target: int = 2000, n_features: int = 2,
                         shift: float = 1.0, scale: float = 0.7,
                         task: str = "classification", noise: float = 0.1,
                         return_ratio: bool = False, random_state: int | None = 0):
    """Gaussian covariate shift with a known density ratio.

    Source inputs follow N(0, I_d); target inputs follow N(m, s² I_d), where m points along
    the diagonal with norm ``shift`` and s = ``scale``: the target sits off-centre and is
    narrower, so the true ratio is a bump (not a monotone function of one direction).
    The labelling function is the same in both domains and non-linear, so a misspecified
    model fitted on the source benefits from importance weighting (Shimodaira 2000).

    Parameters
    ----------
    n_source, n_target : int, default=2000
    n_features : int, default=2
    shift : float, default=1.0
        Euclidean norm of the target mean.
    scale : float, default=0.7
        Standard deviation of the target in each direction.
    task : {"classification", "regression"}
        Classification: y = 1[x·u + 0.75 sin(3 x·v) > 0.25 (x·u)² - 0.2] with fixed unit
        directions u, v; regression: y = sinc(2 x·u) + 0.5 x·v + N(0, noise²).
    noise : float, default=0.1
        Label noise (regression) or the fraction of flipped labels / 2 (classification).
    return_ratio : bool, default=False
        Also return the true :class:`DensityRatio` as a fifth value.
    random_state : int or None, default=0

    Returns
    -------
    Xs, ys, Xt, yt[, ratio]
    """
    if task not in ("classification", "regression"):
        raise ValueError("task must be 'classification' or 'regression'")
    rng = check_random_state(random_state)
    d = n_features
    mean = np.full(d, shift / np.sqrt(d))
    Xs = rng.standard_normal((n_source, d))
    Xt = mean + scale * rng.standard_normal((n_target, d))
    # Fixed directions: u along the shift, v orthogonal to it (first axis for d=1).
    u = np.ones(d) / np.sqrt(d)
    v = np.zeros(d)
    v[0] = 1.0
    v = v - (v @ u) * u
    v = v / np.linalg.norm(v) if np.linalg.norm(v) > 0 else v

    def label(X: np.ndarray) -> np.ndarray:
        a, b = X @ u, X @ v
        if task == "regression":
            return np.sinc(2 * a) + 0.5 * b + noise * rng.standard_normal(X.shape[0])
        y = (a + 0.75 * np.sin(3 * b) > 0.25 * a**2 - 0.2).astype(np.int64)
        flip = rng.random_sample(X.shape[0]) < noise / 2
        return np.where(flip, 1 - y, y)

    ys, yt = label(Xs), label(Xt)
    if return_ratio:
        return Xs, ys, Xt, yt, DensityRatio(mean=mean, scale=scale)
    return Xs, ys, Xt, yt


def make_digits_shift(shift: str = "rotation", angle: float = 30.0, noise_std: float = 4.0,
                      source_fraction: float = 0.5, random_state: int | None = 0):
    """Source and target from scikit-learn's bundled 8x8 digits, the target transformed.

    The 1797 images are split at random into disjoint source and target halves; the target
    images are then rotated by ``angle`` degrees, corrupted by Gaussian noise of standard
    deviation ``noise_std`` (pixel range 0-16), or inverted (16 - x).

    Parameters
    ----------
    shift : {"rotation", "noise", "inversion"}
    angle : float, default=30
    noise_std : float, default=4.0
    source_fraction : float, default=0.5
    random_state : int or None, default=0

    Returns
    -------
    Xs, ys, Xt, yt : ndarray
        Flattened images (n, 64) with values in [0, 16] and digit labels.
    """
    if shift not in ("rotation", "noise", "inversion"):
        raise ValueError("shift must be one of 'rotation', 'noise', 'inversion'")
    rng = check_random_state(random_state)
    digits = load_digits()
    X, y = digits.images.astype(np.float64), digits.target
    order = rng.permutation(len(y))
    n_src = int(round(source_fraction * len(y)))
    src, tgt = order[:n_src], order[n_src:]
    Xs, ys = X[src], y[src]
    Xt, yt = X[tgt].copy(), y[tgt]
    if shift == "rotation":
        Xt = ndimage.rotate(Xt, angle, axes=(1, 2), reshape=False, order=1, mode="constant")
    elif shift == "noise":
        Xt = Xt + noise_std * rng.standard_normal(Xt.shape)
    else:
        Xt = 16.0 - Xt
    Xt = np.clip(Xt, 0.0, 16.0)
    return Xs.reshape(len(ys), -1), ys, Xt.reshape(len(yt), -1), yt
