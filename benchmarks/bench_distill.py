"""Knowledge distillation when labels are scarce for the student: KD vs labels alone.

Usage::

    python benchmarks/bench_distill.py [--seeds 5] [--jobs 2] [--no-ablation]

Cross-domain distillation (the seed tutorial's second experiment): the teacher is trained
on a labelled source, the student learns on the target inputs (the transfer set) from the
teacher and from a few target labels; accuracy is measured on all target rows.

- **digits**: ``make_digits_shift(shift="noise", noise_std=4)``: 899 labelled source
  digits, 898 target digits with Gaussian pixel noise, 3 labels per class (30) in the
  target; pixels scaled to [0, 1] and fed raw (``standardize=False``: per-pixel
  standardisation on the clean source blows the target's noise up on near-constant
  border pixels). Teacher MLP 64-128-128-10, student MLP 64-32-10; 100 epochs each.
- **two moons**: the seed's ``make_two_moons_shift()`` (target rotated by 30°), 5 labels
  per class in the target. Teacher MLP 2-128-128-2 (400 epochs), student the seed's
  2-10-10-2 trained for the seed's 800 epochs.

Every model trains with Adam 1e-3, batch 64 per domain, through the same Trainer, with
the distiller's defaults otherwise (τ, α, β printed below); "labels alone" is
``alpha=0`` -- the same student, data and steps with the distillation term weighted 0.
``random_state`` 0..seeds-1 varies the teacher's and the student's initialisation, the
minibatches and which target rows are labelled. Table: mean ± std of target accuracy
over the seeds, how many seeds beat labels alone, median seconds per student fit.
The ablation sweeps τ ∈ {1, 2, 4, 8} × α ∈ {0.1, 0.5, 0.9} for response KD on digits,
with the seed's loss (no τ²) and Hinton et al.'s (× τ²).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch
from joblib import Parallel, delayed

import transferkit as tk
from transferkit.nn import TorchEstimator
from transferkit.parameter.distill import KnowledgeDistillation

TAUS = (1, 2, 4, 8)
ALPHAS = (0.1, 0.5, 0.9)


def digits_task():
    Xs, ys, Xt, yt = tk.datasets.make_digits_shift(shift="noise", noise_std=4, random_state=0)
    return Xs / 16, ys, Xt / 16, yt


def moons_task():
    return tk.datasets.make_two_moons_shift()


TASKS = {
    "digits": dict(data=digits_task, per_class=3, teacher_hidden=(128, 128),
                   student_hidden=(32,), standardize=False, teacher_epochs=100, epochs=100),
    "two moons": dict(data=moons_task, per_class=5, teacher_hidden=(128, 128),
                      student_hidden=(10, 10), standardize=True, teacher_epochs=400,
                      epochs=800),
}

VARIANTS = {
    "labels alone (α=0)": dict(alpha=0.0),
    "KD response": dict(kind="response"),
    "KD feature (FitNet)": dict(kind="feature"),
    "KD relation (RKD)": dict(kind="relation"),
}


def few_labels(yt: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full(len(yt), np.nan)
    for c in np.unique(yt):
        out[rng.choice(np.flatnonzero(yt == c), per_class, replace=False)] = c
    return out


def run_seed(task: str, seed: int, ablation: bool) -> dict[str, float]:
    torch.set_num_threads(1)
    spec = TASKS[task]
    Xs, ys, Xt, yt = spec["data"]()
    few = few_labels(yt, spec["per_class"], seed)
    teacher = TorchEstimator(hidden_layer_sizes=spec["teacher_hidden"],
                             epochs=spec["teacher_epochs"],
                             batch_size=64, standardize=spec["standardize"],
                             random_state=seed).fit(Xs, ys)
    out = {"teacher (source-trained)": teacher.score(Xt, yt)}
    common = dict(teacher=teacher, hidden_layer_sizes=spec["student_hidden"],
                  epochs=spec["epochs"],
                  batch_size=64, standardize=spec["standardize"], random_state=seed)
    for name, params in VARIANTS.items():
        t0 = time.perf_counter()
        m = KnowledgeDistillation(**{**common, **params}).fit(Xs, ys, Xt, few)
        out[name] = m.score(Xt, yt)
        out[name + " s"] = time.perf_counter() - t0
    if ablation:
        for sq in (False, True):
            for tau in TAUS:
                for alpha in ALPHAS:
                    m = KnowledgeDistillation(**common, tau=tau, alpha=alpha, tau_squared=sq)
                    out[("abl", sq, tau, alpha)] = m.fit(Xs, ys, Xt, few).score(Xt, yt)
    return out


def fmt(values: list[float]) -> str:
    v = np.asarray(values)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-ablation", action="store_true")
    args = ap.parse_args()
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}, {args.jobs} jobs")
    print(f"defaults: KnowledgeDistillation(tau={KnowledgeDistillation().tau}, "
          f"alpha={KnowledgeDistillation().alpha}, beta={KnowledgeDistillation().beta})\n")
    start = time.perf_counter()
    jobs = [(task, seed, not args.no_ablation and task == "digits")
            for task in TASKS for seed in range(args.seeds)]
    results = Parallel(n_jobs=args.jobs)(
        delayed(run_seed)(task, seed, abl) for task, seed, abl in jobs)
    by_task: dict[str, list[dict]] = {}
    for (task, _, _), r in zip(jobs, results):
        by_task.setdefault(task, []).append(r)

    for task, runs in by_task.items():
        print(f"## {task}: target accuracy over {len(runs)} seeds "
              f"({TASKS[task]['per_class']} target labels per class)\n")
        print(f"| {'student':<26} | {'accuracy':>15} | beats labels | s/fit |")
        print(f"|{'-' * 28}|{'-' * 17}|--------------|-------|")
        base = [r["labels alone (α=0)"] for r in runs]
        for name in ["teacher (source-trained)", *VARIANTS]:
            acc = [r[name] for r in runs]
            wins = "" if name.startswith(("teacher", "labels")) else \
                f"{sum(a > b for a, b in zip(acc, base))}/{len(runs)}"
            secs = f"{np.median([r[name + ' s'] for r in runs]):.1f}" if name in VARIANTS \
                else ""
            print(f"| {name:<26} | {fmt(acc):>15} | {wins:>12} | {secs:>5} |")
        print()
        if any(isinstance(k, tuple) for k in runs[0]):
            for sq in (False, True):
                label = "seed's loss, no τ²" if not sq else "Hinton et al., × τ²"
                print(f"### ablation, response KD ({label}): mean target accuracy "
                      f"(labels alone: {np.mean(base):.3f})\n")
                print("| τ \\ α | " + " | ".join(f"{a:>13}" for a in ALPHAS) + " |")
                print("|-------|" + "|".join("-" * 15 for _ in ALPHAS) + "|")
                for tau in TAUS:
                    cells = [fmt([r[("abl", sq, tau, a)] for r in runs]) for a in ALPHAS]
                    print(f"| {tau:>5} | " + " | ".join(f"{c:>13}" for c in cells) + " |")
                print()
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
