"""The seed's DANN experiment for every deep method: Two Moons, accuracy, alignment, speed.

Usage::

    python benchmarks/bench_deep.py [--seeds 5] [--epochs 800] [--methods DANN,DAN]

Data: ``make_two_moons_shift()`` (ADAPT's Two Moons: the target is the source rotated by
30°; fixed data, the seeds vary initialisation and minibatches). Every method is fitted
with :func:`transferkit.feature.presets.adapt_two_moons_settings`: ADAPT's tutorial
networks (encoder Dense(10, relu), task head Dense(10)-Dense(10)-logit, discriminator
Dense(10, relu)-logit), raw inputs, Glorot init, Adam(1e-3, β₁=0.5), 800 epochs, batch 34.

One row per method, random_state 0..seeds-1:

- ``target acc``: mean ± std target accuracy; ``λ=0 acc``: the same method with its
  adaptation weight at 0 (the same networks trained source-only; ADDA: its stage 1);
- ``dom-clf``: 5-fold accuracy of a logistic domain classifier on the learned features of
  source and target, adapted / λ=0 (0.5: indistinguishable);
- ``s/fit``: median seconds per fit; ``ms/step``; ``vs plain``: the median over seeds of
  the fit time divided by that of the same encoder+head trained on the source alone
  through the same Trainer, timed just before it (the cost of one adaptation step against
  one source-only step on the same networks and batch size).

Extra DANN rows show what the setting changes: the constant schedule, torch's defaults
(standardised inputs, torch init, β₁=0.9), and the networks as first written in our brief
(two Dense(10) layers in the encoder, a linear head), which do not adapt.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from torch import nn
from torch.nn import functional as F

import transferkit as tk
from transferkit.datasets import make_two_moons_shift
from transferkit.feature.presets import adapt_two_moons_settings
from transferkit.nn import Trainer

METHODS = ("DANN", "ADDA", "DeepCORAL", "DAN", "MCD", "MDD", "CDAN")
VARIANTS = {
    "DANN, constant λ": {"schedule": "constant"},
    "DANN, torch defaults": {"standardize": True, "init": "torch", "trainer_params": None},
    "DANN, 2-layer encoder, linear head": {"hidden_layer_sizes": (10, 10), "head": None},
}


def _features(model, Xs, Xt):
    if hasattr(model, "networks_") and "source_encoder" in model.networks_:  # ADDA
        with torch.no_grad():
            zs = model.networks_["source_encoder"](
                torch.as_tensor(model._scale(Xs), dtype=torch.float32)).numpy()
        return zs, model.transform(Xt)
    return model.transform(Xs), model.transform(Xt)


def domain_classifier_accuracy(zs: np.ndarray, zt: np.ndarray) -> float:
    Z = np.vstack([zs, zt])
    Z = (Z - Z.mean(0)) / (Z.std(0) + 1e-12)
    d = np.r_[np.zeros(len(zs)), np.ones(len(zt))]
    return float(cross_val_score(LogisticRegression(max_iter=1000), Z, d, cv=5).mean())


CLOCK = time.perf_counter  # --clock cpu: time.thread_time


def plain_source_only_seconds(Xs, ys, Xt, epochs: int, seed: int = 0) -> float:
    """The preset's encoder+head trained on the source alone through the Trainer."""
    torch.manual_seed(seed)
    settings = adapt_two_moons_settings()
    module = nn.ModuleDict({"encoder": nn.Sequential(nn.Linear(2, 10), nn.ReLU()),
                            "head": settings["head"]})

    class Task:
        def __init__(self) -> None:
            self.module = module

        def loss(self, batch, progress):
            xs, y = batch["source"]
            out = module["head"](module["encoder"](xs)).reshape(-1)
            return {"loss": F.binary_cross_entropy_with_logits(out, y)}

    f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    data = {"source": (f32(Xs), f32(ys)),
            "target": (f32(Xt), torch.zeros(len(Xt)), torch.zeros(len(Xt), dtype=torch.bool))}
    t = CLOCK()
    Trainer(epochs=epochs, batch_size=34, random_state=seed,
            optimizer_params={"betas": (0.5, 0.999)}).fit(Task(), data)
    return CLOCK() - t


def _run(name: str, params: dict, seeds: int, data, epochs: int = 0
         ) -> tuple[list, list, list, list]:
    """Accuracy, seconds, domain-classifier accuracy per seed; with ``epochs``, also the
    fit time over a plain source-only fit timed right before it (pairs, so that the
    ratio holds while a shared machine's speed drifts)."""
    Xs, ys, Xt, yt = data
    cls = tk.get_method(name).cls
    accs, secs, dom, ratios = [], [], [], []
    for s in range(seeds):
        plain = plain_source_only_seconds(Xs, ys, Xt, epochs, s) if epochs else None
        t = CLOCK()
        m = cls(**params, random_state=s).fit(Xs, ys, Xt)
        secs.append(CLOCK() - t)
        accs.append(m.score(Xt, yt))
        dom.append(domain_classifier_accuracy(*_features(m, Xs, Xt)))
        if plain:
            ratios.append(secs[-1] / plain)
    return accs, secs, dom, ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=800)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this thread's CPU time (time.thread_time), steadier than "
                             "the wall clock on a shared machine; the fits run on one thread")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    data = make_two_moons_shift()
    Xs, ys, Xt, _ = data
    steps = args.epochs * math.ceil(len(Xs) / 34)
    plains = [plain_source_only_seconds(Xs, ys, Xt, args.epochs, s) for s in range(3)]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"{args.epochs} epochs x {steps // args.epochs} steps, seeds 0..{args.seeds - 1}")
    header = (f"{'method':36s} {'target acc':>13s} {'λ=0 acc':>13s} {'dom-clf':>11s} "
              f"{'s/fit':>6s} {'ms/step':>8s} {'vs plain':>9s}")
    print(header)
    print("-" * len(header))
    rows = [(n, n, {}) for n in args.methods.split(",")]
    if "DANN" in args.methods.split(","):
        rows += [(label, "DANN", extra) for label, extra in VARIANTS.items()]
    for label, name, extra in rows:
        params = {**adapt_two_moons_settings(name), "epochs": args.epochs, **extra}
        accs, secs, dom, ratios = _run(name, params, args.seeds, data, args.epochs)
        off_accs, _, off_dom, _ = _run(name, {**params, "lambda_": 0.0}, args.seeds, data)
        fit = float(np.median(secs))
        print(f"{label:36s} {np.mean(accs):.3f} ± {np.std(accs):.3f} "
              f"{np.mean(off_accs):.3f} ± {np.std(off_accs):.3f} "
              f"{np.mean(dom):.2f}/{np.mean(off_dom):.2f} {fit:6.2f} "
              f"{1e3 * fit / steps:8.3f} {np.median(ratios):9.2f}", flush=True)
    plain = float(np.median(plains))
    print(f"{'plain encoder+head (Trainer)':36s} {'':13s} {'':13s} {'':11s} {plain:6.2f} "
          f"{1e3 * plain / steps:8.3f} {1.0:9.2f}")


if __name__ == "__main__":
    main()
