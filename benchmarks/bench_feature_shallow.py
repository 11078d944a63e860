"""Target accuracy and fit time of the shallow feature-transfer methods.

Run with ``OMP_NUM_THREADS=2 python benchmarks/bench_feature_shallow.py``. For each
problem and method it prints the target accuracy, mean ± std over 5 seeds, and the mean
``fit`` time in seconds:

- two moons, 30° rotation (``make_two_moons_shift``), base learner ``SVC(kernel="rbf")``;
- digits with Gaussian pixel noise and with a 30° rotation (``make_digits_shift``), base
  learner ``LogisticRegression(max_iter=1000)``.

CORAL, SA and TCA run with their default hyper-parameters and no target labels; FA needs
labels and gets 20 labelled target samples, as does the SourceTarget baseline printed
next to it for a fair comparison. Every method is scored on the same target samples: all
but those 20.
"""

from __future__ import annotations

import os
import platform
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from transferkit.baselines import SourceOnly, SourceTarget
from transferkit.datasets import make_digits_shift, make_two_moons_shift
from transferkit.feature import CORAL, FA, SA, TCA

SEEDS = range(5)
N_LABELLED = 20
METHODS = [  # (name, class, uses the 20 target labels)
    ("SourceOnly", SourceOnly, False),
    ("CORAL", CORAL, False),
    ("SA", SA, False),
    ("TCA", TCA, False),
    ("SourceTarget (20 labels)", SourceTarget, True),
    ("FA (20 labels)", FA, True),
]
PROBLEMS = [
    ("two moons, 30°", lambda s: make_two_moons_shift(random_state=s), SVC(kernel="rbf")),
    ("digits, noise", lambda s: make_digits_shift(shift="noise", random_state=s),
     LogisticRegression(max_iter=1000)),
    ("digits, rotation 30°", lambda s: make_digits_shift(shift="rotation", random_state=s),
     LogisticRegression(max_iter=1000)),
]


def run(problem, estimator, cls, labelled: bool) -> tuple[list[float], list[float]]:
    accs, secs = [], []
    for seed in SEEDS:
        Xs, ys, Xt, yt = problem(seed)
        order = np.random.default_rng(seed).permutation(len(yt))
        known, test = order[:N_LABELLED], order[N_LABELLED:]
        yt_train = None
        if labelled:
            yt_train = np.full(len(yt), np.nan)
            yt_train[known] = yt[known]
        model = cls(estimator=clone(estimator), random_state=seed)
        start = time.perf_counter()
        model.fit(Xs, ys, Xt, yt_train)
        secs.append(time.perf_counter() - start)
        accs.append(model.score(Xt[test], yt[test]))
    return accs, secs


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"# {platform.machine()} {platform.processor()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"numpy {np.__version__}")
    print(f"# target accuracy (mean ± std over {len(SEEDS)} seeds) on the target samples "
          f"not among the {N_LABELLED} labelled ones; mean fit seconds")
    header = f"{'problem':22s} {'method':26s} {'accuracy':>15s} {'fit s':>7s}"
    print(header)
    print("-" * len(header))
    for pname, problem, estimator in PROBLEMS:
        for mname, cls, labelled in METHODS:
            accs, secs = run(problem, estimator, cls, labelled)
            print(f"{pname:22s} {mname:26s} {np.mean(accs):7.3f} ± {np.std(accs):5.3f} "
                  f"{np.mean(secs):7.2f}", flush=True)


if __name__ == "__main__":
    main()
