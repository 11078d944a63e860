"""Time one 800-epoch fit of the seed's network and the optimiser variants behind it.

Usage: python benchmarks/bench_trainer.py
Prints: seconds for 2 400 Adam steps (batch 34) of a 2-10-10-1 MLP with the default,
foreach=False and fused Adam, and one MLPClassifier fit on Two Moons (median of 3).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from transferkit.datasets import make_two_moons_shift
from transferkit.nn import MLPClassifier


def adam_steps(**kw) -> float:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1))
    X, y, w = torch.randn(34, 2), torch.rand(34), torch.ones(34)
    opt = torch.optim.Adam(m.parameters(), 1e-3, **kw)
    t = time.perf_counter()
    for _ in range(2400):
        loss = (w * F.binary_cross_entropy_with_logits(m(X).reshape(-1), y,
                                                       reduction="none")).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def fit_seed_network() -> float:
    Xs, ys, _, _ = make_two_moons_shift()
    net = MLPClassifier(hidden_layer_sizes=(10, 10), epochs=800, batch_size=34,
                        standardize=False, random_state=0)
    t = time.perf_counter()
    net.fit(Xs, ys)
    return time.perf_counter() - t


def main() -> None:
    torch.set_num_threads(1)
    fit_seed_network()  # warm-up: the first fused step imports optional torch modules
    rows = [("Adam (default)", lambda: adam_steps()),
            ("Adam foreach=False", lambda: adam_steps(foreach=False)),
            ("Adam fused=True", lambda: adam_steps(fused=True)),
            ("MLPClassifier fit, 800 epochs", fit_seed_network)]
    print(f"{'what':32s} {'seconds (median of 3)':>22s}")
    for name, fn in rows:
        print(f"{name:32s} {statistics.median(fn() for _ in range(3)):22.3f}")


if __name__ == "__main__":
    main()
