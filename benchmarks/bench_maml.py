"""The seed's meta-learning experiment: MAML on rotated Two Moons, and ProtoNet on digits.

Usage::

    python benchmarks/bench_maml.py [--seeds 5] [--epochs 20] [--tasks 200] [--jobs 2]
                                    [--out benchmarks/out/maml_boundaries.png]

MAML (Finn et al., 2017). Tasks: Two Moons rotated by an angle in [-180°, 180°]
(:class:`~transferkit.parameter.RotatedMoonsTasks`, noise 0.1, 10 shots and 15 queries per
class). Rotations within ±10° of -120, -60, 0, 60, 120 and 180° (the angles of the seed's
pictures) are held out of meta-training; the evaluation tasks (``--tasks`` of them, the same
for every seed) are drawn from those held-out bands only. For every seed, MAML is
meta-trained (second order, and first order), then each held-out task's support set gets
k = 0..10 full-batch gradient steps (α = 0.5) from

- the MAML initialisation (second order), - the first-order MAML initialisation,
- a fresh random initialisation of the same network (one per task),

and the table gives the query accuracy, mean ± std over seeds (the std is over seeds of
the mean over tasks). The acceptance criterion is the k = 5 row: MAML minus random ≥ 0.10.

ProtoNet (Snell et al., 2017) on scikit-learn's 8x8 digits, 5-way 5-shot, 15 queries per
class, 300 test episodes:

- "novel classes": meta-trained on digits 0-4 (each rotated by 0/90/180/270° and
  transposed, 40 training classes, 20-way training episodes as in the paper), tested on
  digits 5-9, never seen;
- "novel images": meta-trained on episodes from a random half of the images (all ten
  classes), tested on episodes from the other half.

Baselines: nearest class mean on the raw pixels (no learning) and the untrained encoder.

The figure (``--out``, PNG) shows the seed's per-task picture for seed 0: decision
boundaries on held-out rotations after 0 and 5 steps from the MAML initialisation and from
a random initialisation; ``*_curves.png`` next to it plots accuracy against steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.datasets import load_digits

from transferkit.parameter import (
    MAML,
    ArrayTasks,
    ProtoNet,
    RotatedMoonsTasks,
    draw_adaptation_grid,
)
from transferkit.parameter.protonet import prototype_logits
from transferkit.parameter.tasks import stack_tasks
from transferkit.report.plots import new_figure, save_figure

HELD_OUT = (-120, -60, 0, 60, 120, 180)
FIGURE_ANGLES = (180, 120, 60, 0, -60, -120)


def moons_sampler() -> RotatedMoonsTasks:
    return RotatedMoonsTasks(shots=10, query=15, noise=0.1, held_out=HELD_OUT,
                             held_out_width=20)


def run_maml(seed: int, epochs: int, n_tasks: int, max_steps: int) -> dict:
    torch.set_num_threads(1)
    sampler = moons_sampler()
    tasks = sampler.held_out_sampler().sample(n_tasks, rng=12345)
    steps = list(range(max_steps + 1))
    out: dict = {"seed": seed}
    for name, fo in (("MAML (2nd order)", False), ("MAML (1st order)", True)):
        t = time.perf_counter()
        m = MAML(first_order=fo, epochs=epochs, random_state=seed).fit(sampler)
        out[f"{name} s"] = time.perf_counter() - t
        out[name] = m.evaluate(tasks, steps=steps).mean(0)
        if not fo:
            out["model"] = m
    out["random init"] = out["model"].evaluate(tasks, steps=steps, init="random",
                                               random_state=seed).mean(0)
    return out


def _raw_prototypes(tasks) -> float:
    Xs, ys, Xq, yq = (torch.as_tensor(a) for a in stack_tasks(tasks))
    n_ways = int(ys.max()) + 1
    return float((prototype_logits(Xs, ys, Xq, n_ways).argmax(-1) == yq).float().mean())


def _augmented(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every class rotated by 0/90/180/270° and transposed: 8 new classes per class."""
    imgs, Xa, ya = X.reshape(-1, 8, 8), [], []
    for k in range(4):
        for flip in (0, 1):
            im = np.rot90(imgs, k, axes=(1, 2))
            im = im.transpose(0, 2, 1) if flip else im
            Xa.append(im.reshape(len(y), -1))
            ya.append(y * 8 + 2 * k + flip)
    return np.concatenate(Xa), np.concatenate(ya)


def run_protonet(seed: int, epochs: int) -> dict:
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    out: dict = {}
    # novel classes: train on (augmented) digits 0-4, test 5-way on digits 5-9
    Xa, ya = _augmented(X[y < 5], y[y < 5])
    train = ArrayTasks(Xa, ya, n_ways=20, shots=5, query=15)
    test = ArrayTasks(X, y, n_ways=5, shots=5, query=15, classes=range(5, 10)).sample(
        300, rng=777)
    # novel images: a random half of the images for training, the other half for testing
    perm = np.random.default_rng(0).permutation(len(y))
    a, b = perm[: len(y) // 2], perm[len(y) // 2:]
    train2 = ArrayTasks(X[a], y[a], n_ways=5, shots=5, query=15)
    test2 = ArrayTasks(X[b], y[b], n_ways=5, shots=5, query=15).sample(300, rng=777)
    for label, tr, te in (("novel classes", train, test), ("novel images", train2, test2)):
        t = time.perf_counter()
        net = ProtoNet(epochs=epochs, random_state=seed).fit(tr)
        out[f"{label} s"] = time.perf_counter() - t
        out[f"ProtoNet, {label}"] = float(net.evaluate(te).mean())
        blank = ProtoNet(epochs=1, steps_per_epoch=1, lr=1e-12, random_state=seed).fit(tr)
        out[f"untrained encoder, {label}"] = float(blank.evaluate(te).mean())
        out[f"raw pixels, {label}"] = _raw_prototypes(te)
    return out


def _fmt(values) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3f} ± {v.std():.3f}"


def curves_figure(results: list[dict], names: list[str], path: Path) -> str:
    fig, (ax,) = new_figure(1, width=5.5, height=4.0)
    for name in names:
        c = np.stack([r[name] for r in results])
        k = np.arange(c.shape[1])
        ax.errorbar(k, c.mean(0), yerr=c.std(0), label=name, capsize=3, lw=1.4)
    ax.set_xlabel("gradient steps on the support set (10 shots per class)")
    ax.set_ylabel("query accuracy, held-out rotations")
    ax.set_ylim(0.3, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20,
                        help="MAML epochs of 50 meta-updates (MAML's own default is 40)")
    parser.add_argument("--proto-epochs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/maml_boundaries.png")
    args = parser.parse_args()
    start = time.perf_counter()
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, python {platform.python_version()}, torch "
          f"{torch.__version__}; {args.jobs} worker processes, 1 thread each")
    seeds = list(range(args.seeds))
    jobs = [delayed(run_maml)(s, args.epochs, args.tasks, args.max_steps) for s in seeds]
    jobs += [delayed(run_protonet)(s, args.proto_epochs) for s in seeds]
    done = Parallel(n_jobs=args.jobs)(jobs)
    maml, proto = done[:len(seeds)], done[len(seeds):]

    names = ["MAML (2nd order)", "MAML (1st order)", "random init"]
    print(f"\nMAML on rotated Two Moons: query accuracy on {args.tasks} held-out rotations "
          f"(±10° of {HELD_OUT}), 10 shots/class, α=0.5, {args.epochs * 50} meta-updates, "
          f"seeds 0..{args.seeds - 1}")
    header = f"{'steps':>5s}  " + "  ".join(f"{n:>17s}" for n in names)
    print(header)
    print("-" * len(header))
    for k in range(args.max_steps + 1):
        print(f"{k:5d}  " + "  ".join(f"{_fmt([r[n][k] for r in maml]):>17s}" for n in names))
    k = min(5, args.max_steps)
    margin = [r["MAML (2nd order)"][k] - r["random init"][k] for r in maml]
    margin1 = [r["MAML (1st order)"][k] - r["random init"][k] for r in maml]
    print(f"\nmargin at {k} steps, MAML - random init: 2nd order {_fmt(margin)} (min "
          f"{min(margin):.3f}), 1st order {_fmt(margin1)}  [acceptance: >= 0.10]")
    print("meta-training seconds per fit: 2nd order "
          f"{np.median([r['MAML (2nd order) s'] for r in maml]):.1f}, 1st order "
          f"{np.median([r['MAML (1st order) s'] for r in maml]):.1f} (median)")

    print(f"\nProtoNet on digits, 5-way 5-shot, 300 test episodes, seeds 0..{args.seeds - 1} "
          f"({args.proto_epochs * 50} updates of 4 episodes)")
    header = f"{'':28s} {'novel classes':>15s} {'novel images':>15s}"
    print(header)
    print("-" * len(header))
    for row in ("ProtoNet", "untrained encoder", "raw pixels"):
        print(f"{row:28s} {_fmt([r[f'{row}, novel classes'] for r in proto]):>15s} "
              f"{_fmt([r[f'{row}, novel images'] for r in proto]):>15s}")
    print(f"{'chance':28s} {0.2:15.3f} {0.2:15.3f}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sampler = moons_sampler()
    tasks = sampler.tasks_at(FIGURE_ANGLES, rng=0)
    fig = draw_adaptation_grid(maml[0]["model"], tasks, steps=(0, 5),
                               titles=[f"rotation {a}° (held out)" for a in FIGURE_ANGLES],
                               random_state=0)
    print(f"\nfigure: {save_figure(fig, out)}")
    print(f"curves: {curves_figure(maml, names, out.with_name(out.stem + '_curves.png'))}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
