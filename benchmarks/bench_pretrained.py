"""Throughput of the pretrained encoders, cold and cached, and a Fashion-MNIST linear probe.

Usage: python benchmarks/bench_pretrained.py [--sentences 2000] [--images 256]
       [--fmnist-train 500] [--fmnist-test 500] [--no-fmnist]

Prints a table of
- all-MiniLM-L6-v2 (TextEncoder, batch 64): sentences/s on short generated sentences,
- EfficientNet-Lite0 (ImageEncoder, 224 x 224, batch 32): images/s,
each "cold" (the model already loaded, an empty feature cache: every input is encoded and
the cache file written) and "cached" (the same call again: read from the cache), and the
one-off model load time. When ``transferkit.datasets.load_fashion_mnist`` and its data are
available, also the test accuracy of a logistic regression (standardised inputs) on
EfficientNet-Lite0 features vs on raw pixels, Fashion-MNIST 500 train / 500 test.

Everything runs offline from installed packages; the feature cache is a temporary folder.
The machine, the command and the load average are printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{cpu}, {cores} cores available, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), GPU: {gpu}, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}")


def sentences(n: int, seed: int = 0) -> list[str]:
    """Short, varied English sentences (6-12 words)."""
    rng = np.random.default_rng(seed)
    subj = ["The old man", "A young girl", "My neighbour", "The teacher", "A small dog",
            "The engineer", "Our team", "The doctor", "A tourist", "The cat"]
    verb = ["reads", "fixes", "paints", "watches", "carries", "finds", "sells", "cleans",
            "describes", "forgets"]
    obj = ["a red bicycle", "the broken window", "an old map", "the new report",
           "a wooden box", "the evening news", "a long letter", "the kitchen table"]
    tail = ["", " in the park", " before breakfast", " every Sunday", " at the station",
            " with great care", " near the river", " after the storm"]
    return [f"{subj[a]} {verb[b]} {obj[c]}{tail[d]}." for a, b, c, d in
            rng.integers(0, [len(subj), len(verb), len(obj), len(tail)], size=(n, 4))]


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench_text(n: int, cache_dir: str) -> list[tuple]:
    from transferkit.pretrained import TextEncoder

    enc = TextEncoder(batch_size=64, cache_dir=cache_dir)
    _, load = timed(enc.fit)
    texts = sentences(n)
    Z, cold = timed(enc.transform, texts)
    Z2, warm = timed(enc.transform, texts)
    assert Z.shape == (n, 384) and np.array_equal(Z, Z2)
    return [("all-MiniLM-L6-v2, batch 64", f"{n} sentences", "sentences/s", load,
             n / cold, n / warm)]


def bench_images(n: int, cache_dir: str) -> list[tuple]:
    from transferkit.pretrained import ImageEncoder

    enc = ImageEncoder(batch_size=32, cache_dir=cache_dir)
    _, load = timed(enc.fit)
    X = np.random.default_rng(0).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    Z, cold = timed(enc.transform, X)
    Z2, warm = timed(enc.transform, X)
    assert Z.shape == (n, 1280) and np.array_equal(Z, Z2)
    return [("EfficientNet-Lite0 224, batch 32", f"{n} images 224x224x3 uint8", "images/s",
             load, n / cold, n / warm)]


def bench_fashion_mnist(n_train: int, n_test: int, cache_dir: str) -> list[tuple] | str:
    try:
        from transferkit.datasets import load_fashion_mnist
    except ImportError as exc:
        return f"skipped: transferkit.datasets.load_fashion_mnist unavailable ({exc})"
    try:
        Xtr, ytr, Xte, yte = load_fashion_mnist(n_train, n_test, random_state=0)
    except Exception as exc:  # data not installed: the loader explains how to get it
        return f"skipped: {type(exc).__name__}: {exc}"
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from transferkit.pretrained import ImageEncoder

    def probe(A, B) -> float:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        return float(clf.fit(A, ytr).score(B, yte))

    enc = ImageEncoder(batch_size=32, cache_dir=cache_dir)
    (Ftr, Fte), secs = timed(lambda: (enc.transform(Xtr), enc.transform(Xte)))
    rows = [("raw pixels (784) + LogisticRegression", probe(Xtr.reshape(len(Xtr), -1),
                                                            Xte.reshape(len(Xte), -1)), None),
            ("EfficientNet-Lite0 (1280) + LogisticRegression", probe(Ftr, Fte), secs)]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--fmnist-train", type=int, default=500)
    ap.add_argument("--fmnist-test", type=int, default=500)
    ap.add_argument("--no-fmnist", action="store_true")
    args = ap.parse_args(argv)

    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"machine: {machine()}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load:
        print(f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    cache_dir = tempfile.mkdtemp(prefix="transferkit-bench-")
    try:
        rows = bench_text(args.sentences, cache_dir) + bench_images(args.images, cache_dir)
        print()
        print(f"{'model':<34} {'data':<28} {'unit':<12} {'load s':>7} {'cold':>9} "
              f"{'cached':>11}")
        for model, data, unit, load_s, cold, warm in rows:
            print(f"{model:<34} {data:<28} {unit:<12} {load_s:7.2f} {cold:9.1f} {warm:11.0f}")
        if not args.no_fmnist:
            print()
            print(f"Fashion-MNIST, {args.fmnist_train} train / {args.fmnist_test} test "
                  "(stratified, random_state=0), StandardScaler + LogisticRegression:")
            res = bench_fashion_mnist(args.fmnist_train, args.fmnist_test, cache_dir)
            if isinstance(res, str):
                print(f"  {res}")
            else:
                for name, acc, secs in res:
                    extra = "" if secs is None else f"   (features: {secs:.1f} s)"
                    print(f"  {name:<48} accuracy {acc:.3f}{extra}")
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    if load:
        end = os.getloadavg()
        print(f"\nload average at end (1/5/15 min): {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} "
              "(above the core count, other processes shared the CPU)")


if __name__ == "__main__":
    main()
