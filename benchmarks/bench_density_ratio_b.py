"""Speed and accuracy of KMM, classifier weighting and nearest-neighbour weighting.

Run with ``OMP_NUM_THREADS=2 python benchmarks/bench_density_ratio_b.py``. Prints, per
case, the median wall time of ``fit_weights`` over 3 runs, the Spearman correlation of
the weights with the true density ratio, the largest weight, whether KMM's constraints
hold (0 <= β <= B and |Σβ - n| <= n ε) and the peak memory traced by ``tracemalloc`` in
a separate run (the n = 20 000 KMM case takes the Nyström path: an n x n float32 kernel
would need 1.5 GiB).

Targets (2 cores): KMM at n = 5000, d = 10 under 5 s.
"""

from __future__ import annotations

import platform
import time
import tracemalloc

import numpy as np
from scipy.stats import spearmanr

from transferkit.datasets import make_covariate_shift
from transferkit.instance.classifier import ClassifierWeighting
from transferkit.instance.kmm import KMM
from transferkit.instance.nnw import NearestNeighborsWeighting

REPEATS = 3
D = 10
CASES = [
    ("KMM (exact)", lambda: KMM(random_state=0), 5000),
    ("KMM (Nystrom, 500 landmarks)", lambda: KMM(random_state=0), 20_000),
    ("ClassifierWeighting (cv=5)", lambda: ClassifierWeighting(random_state=0), 5000),
    ("NearestNeighborsWeighting", lambda: NearestNeighborsWeighting(random_state=0), 5000),
]


def _bound(model, n: int) -> str:
    if not isinstance(model, KMM):
        return "n/a"
    b = model.beta_
    ok = b.min() >= 0 and b.max() <= model.B and abs(b.sum() - n) <= n * model.eps_ + 1e-6
    return f"{'yes' if ok else 'NO'} (max b={b.max():.2f})"


def main() -> None:
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}")
    header = (f"{'method':30s} {'n':>6s} {'d':>3s} {'seconds':>8s} {'spearman':>9s} "
              f"{'max w':>7s} {'peak MiB':>9s}  bound honoured")
    print(header)
    print("-" * len(header))
    for name, make, n in CASES:
        Xs, _, Xt, _, ratio = make_covariate_shift(n_source=n, n_target=n, n_features=D,
                                                   return_ratio=True, random_state=0)
        times = []
        for _ in range(REPEATS):
            model = make()
            start = time.perf_counter()
            w = model.fit_weights(Xs, Xt)
            times.append(time.perf_counter() - start)
        rho = spearmanr(w, ratio(Xs))[0]
        tracemalloc.start()
        make().fit_weights(Xs, Xt)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{name:30s} {n:6d} {D:3d} {np.median(times):8.3f} {rho:9.4f} {w.max():7.2f} "
              f"{peak:9.0f}  {_bound(model, n)}")


if __name__ == "__main__":
    main()
