"""Gaussian kernels as matrix products, with the median heuristic for their width."""

from __future__ import annotations

import numpy as np


def sq_dists(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of X and Y, shape (len(X), len(Y))."""
    d = (np.einsum("ij,ij->i", X, X)[:, None] + np.einsum("ij,ij->i", Y, Y)[None, :]
         - 2.0 * X @ Y.T)
    np.maximum(d, 0.0, out=d)
    return d


def gaussian_kernel(X: np.ndarray, Y: np.ndarray, sigma: float) -> np.ndarray:
    """k(x, y) = exp(-||x - y||² / (2 σ²)) for every pair of rows."""
    K = sq_dists(X, Y)
    K *= -1.0 / (2.0 * sigma**2)
    np.exp(K, out=K)
    return K


def median_distance(X: np.ndarray, Y: np.ndarray | None = None, max_points: int = 1000,
                    random_state: int | None = 0) -> float:
    """Median pairwise distance on a subsample (the usual kernel-width heuristic)."""
    rng = np.random.default_rng(random_state)
    Z = X if Y is None else np.vstack([X, Y])
    if len(Z) > max_points:
        Z = Z[rng.choice(len(Z), max_points, replace=False)]
    d = np.sqrt(sq_dists(Z, Z)[np.triu_indices(len(Z), k=1)])
    med = float(np.median(d)) if d.size else 1.0
    return med if med > 0 else 1.0
