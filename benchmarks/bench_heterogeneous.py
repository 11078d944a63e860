"""The seed's heterogeneous Two Moons experiment (HeDANN), with its two baselines.

    python benchmarks/bench_heterogeneous.py [--seeds 5] [--labels 4,10,20]

Source: Two Moons in 2-D (100 points, all labelled); target: the same moons in 3-D, turned
30° in the XZ plane (:func:`transferkit.datasets.make_heterogeneous_moons`), with ``k``
labelled rows drawn per seed (half per class). Every network is the seed tutorial's
(:func:`~transferkit.feature.presets.adapt_two_moons_settings`: 800 epochs, batch 34).
Accuracy on all 100 target rows, mean ± std over seeds:

- ``HeDANN``: one encoder per domain, shared head and adversarial domain discriminator;
- ``HeDANN λ=0``: the same networks and labels without the adversarial term (the shared
  head still learns from the source through the source encoder);
- ``target only``: the seed's MLP trained on the ``k`` labelled target rows alone.

``PAD`` is the proxy A-distance between the encoded source and target rows in the shared
space (a cross-validated logistic domain classifier: 0 indistinguishable, 2 separable).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import transferkit as tk
from transferkit.diagnostics import proxy_a_distance
from transferkit.feature.presets import adapt_two_moons_settings
from transferkit.heterogeneous import HeDANN
from transferkit.nn import MLPClassifier
from transferkit.pipeline import SEED_NETWORK


def run(k: int, seed: int) -> dict[str, float]:
    Xs, ys, Xt, yt = tk.datasets.make_heterogeneous_moons()
    few = tk.datasets.keep_labels(yt, k // 2, random_state=seed)
    out = {}
    for name, lam in (("HeDANN", 1.0), ("HeDANN λ=0", 0.0)):
        m = HeDANN(**{**adapt_two_moons_settings("HeDANN"), "lambda_": lam},
                   random_state=seed).fit(Xs, ys, Xt, few)
        out[name] = m.score(Xt, yt)
        out[name + " PAD"] = proxy_a_distance(m.transform(Xs, domain="source"), m.transform(Xt))
    lab = ~np.isnan(few)
    base = MLPClassifier(**SEED_NETWORK, random_state=seed).fit(Xt[lab], yt[lab])
    out["target only"] = float(np.mean(base.predict(Xt) == yt))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--labels", default="4,10,20")
    args = p.parse_args()
    print(f"# {platform.processor() or platform.machine()}; random_state 0..{args.seeds - 1}; "
          "accuracy on the 100 target rows (mean ± std)")
    cols = ["HeDANN", "HeDANN λ=0", "target only", "HeDANN PAD", "HeDANN λ=0 PAD"]
    print(f"{'labels':>6s} " + " ".join(f"{c:>15s}" for c in cols) + "   time")
    for k in [int(v) for v in args.labels.split(",")]:
        t = time.perf_counter()
        rows = [run(k, s) for s in range(args.seeds)]
        print(f"{k:>6d} " + " ".join(
            f"{np.mean([r[c] for r in rows]):8.3f} ± {np.std([r[c] for r in rows]):.3f}"
            for c in cols) + f"   {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
