"""Label-free model selection on a suite of shift problems.

    python benchmarks/bench_selection.py [--suite design|heldout|fresh|fourth|fifth] [--seeds 3]
                                         [--problems moons20,digits_rot,...] [--reuse]
    python benchmarks/bench_selection.py --summary   # totals over every saved suite

Each problem is compared with ``transferkit.compare(..., selection=[every criterion])``:
every candidate is fitted on 75% of the source (seeds 0..n-1), scored by each label-free
criterion on the held-out 25% and the target, and by its accuracy on all target labels
(which no method and no criterion sees). For each selection rule the table shows the
target accuracy of the method it picks, its gap to the best candidate ("within 2 points")
and to source-only ("never more than 1 point below"). Rules:

- ``<criterion>``: the best mean of that criterion (no safeguard);
- ``<criterion>+safe``: the best, but only if it beats SourceOnly by more than its paired
  standard error allows at 95% (otherwise SourceOnly): ``Leaderboard.selected``;
- ``auto``: what ``transferkit run`` uses (:func:`transferkit.selection.choose`);
  ``auto_g0.5`` the same with a guard of 0.5 standard errors (see :data:`FOURTH`);
  ``cautious`` with ``guard_se=-1`` (a candidate must also be clearly better on reverse
  validation: ``transferkit run --cautious``);
- ``agree``: switch from SourceOnly only to a candidate more than one paired standard
  error better on both reverse validation and ensemble entropy, and not worse by more
  than one on either (the safest combination tried; it rarely switches);
- ``ensv``: EnsV (Hu et al., NeurIPS 2024), agreement with the candidates' ensemble;
- ``meta``: a learned rule (``selection_meta.py``) trained on the other suites' saved
  leaderboards, i.e. out of sample;
- ``rank``: the best mean rank over reverse validation, ATC and MixVal (one criterion of
  each kind: a round trip to the source, source-calibrated confidence, target structure;
  ties keep SourceOnly). ``--mixval-seed`` redraws MixVal's random partners.

The ``(reachable)`` line counts the problems where the top candidate of at least one
criterion is within 2 points of the best: no rule that follows these criteria can do
better.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import transferkit as tk
from selection_meta import MetaRule  # a sibling: benchmarks/ is on the script path
from transferkit.pipeline import seed_method_params
from transferkit.selection import choose
from transferkit.selection.choice import CAUTIOUS_GUARD_SE
from transferkit.selection.compare import Leaderboard, compare
from transferkit.selection.criteria import paired_choice

CRITERIA = ["iwcv", "dev", "reverse", "entropy", "snd", "atc", "mixval"]
SHALLOW = ["SourceOnly", "KMM", "KLIEP", "ClassifierWeighting", "CORAL", "SA", "TCA"]
DEEP = ["DANN", "DeepCORAL", "DAN", "MDD"]
#: The issue's two figures: a choice counts when its target accuracy is within ``NEAR`` of
#: the best candidate's, and is safe when it is not more than ``SAFE`` below SourceOnly's.
NEAR, SAFE = 0.02, 0.01


def figures(acc: float, best: float, source_only: float) -> tuple[bool, bool]:
    """(within 2 points of the best, not more than 1 point below SourceOnly)."""
    return acc >= best - NEAR, acc >= source_only - SAFE


def moons(angle: float, random_state: int = 0) -> Callable[[], dict]:
    def make() -> dict:
        Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(n_samples=200, rotation=angle,
                                                          random_state=random_state)
        names = SHALLOW + DEEP
        from transferkit.nn import MLPClassifier
        from transferkit.pipeline import SEED_NETWORK

        return {"data": (Xs, ys, Xt, yt), "methods": names,
                "params": seed_method_params(names), "estimator": MLPClassifier(**SEED_NETWORK)}
    return make


def covshift(shift: float, random_state: int = 0) -> Callable[[], dict]:
    def make() -> dict:
        Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(400, 400, shift=shift,
                                                          random_state=random_state)
        return {"data": (Xs, ys, Xt, yt), "methods": SHALLOW,
                "estimator": LogisticRegression(max_iter=1000)}
    return make


def digits(kind: str, angle: float = 30, noise_std: float = 4) -> Callable[[], dict]:
    def make() -> dict:
        Xs, ys, Xt, yt = tk.datasets.make_digits_shift(shift=kind, angle=angle,
                                                       noise_std=noise_std, random_state=0)
        return {"data": (Xs / 16.0, ys, Xt / 16.0, yt), "methods": SHALLOW + DEEP[:3],
                "estimator": LogisticRegression(max_iter=2000)}
    return make


def sentiment(source: str, target: str, n: int = 600, sample: int = 0) -> Callable[[], dict]:
    def make() -> dict:
        from transferkit.datasets import load_sentiment_domains
        from transferkit.pretrained import TextEncoder

        enc, out = TextEncoder(), []
        domains = load_sentiment_domains([source, target])
        for name in (source, target):
            texts, y, _ = domains[name]
            rng = np.random.default_rng(sample)
            idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), n // 2,
                                                     replace=False) for c in (0, 1)]))
            out += [enc.transform([texts[i] for i in idx]), y[idx]]
        return {"data": tuple(out), "methods": SHALLOW,
                "estimator": LogisticRegression(max_iter=2000)}
    return make


PROBLEMS: dict[str, Callable[[], dict]] = {
    "moons0": moons(0), "moons20": moons(20), "moons40": moons(40), "moons60": moons(60),
    "gauss1": covshift(1.0), "gauss2": covshift(2.0),
    "digits_rot": digits("rotation"), "digits_noise": digits("noise"),
    "movies_amazon": sentiment("movies", "amazon"), "tweets_nyt": sentiment("tweets", "nyt"),
}

#: Problems the selection rule was *not* designed on: ``--suite heldout`` checks that the
#: rule chosen on :data:`PROBLEMS` carries over (its own boards file).
HELDOUT: dict[str, Callable[[], dict]] = {
    "moons30": moons(30), "moons50": moons(50), "gauss1.5": covshift(1.5),
    "digits_rot45": digits("rotation", angle=45), "digits_noise6": digits("noise", noise_std=6),
    "amazon_movies": sentiment("amazon", "movies"), "nyt_tweets": sentiment("nyt", "tweets"),
    "movies_tweets": sentiment("movies", "tweets"),
}

#: A third suite, fixed before its first run (2026-12-07) to check out of sample a change
#: to ``auto`` that both suites above favoured (ATC ranking in place of the ensemble
#: entropy); on these problems it did worse, so ``auto`` kept its rule (docs/benchmarks.md).
FRESH: dict[str, Callable[[], dict]] = {
    "moons25": moons(25), "moons45": moons(45), "gauss0.5": covshift(0.5),
    "gauss2.5": covshift(2.5), "digits_rot15": digits("rotation", angle=15),
    "digits_rot60": digits("rotation", angle=60), "digits_noise3": digits("noise", noise_std=3),
    "amazon_tweets": sentiment("amazon", "tweets"), "tweets_movies": sentiment("tweets", "movies"),
    "nyt_amazon": sentiment("nyt", "amazon"),
}
#: A fourth suite, fixed before its first run (2026-12-07, second session) to check one
#: change both ways: over the 28 problems above a guard of 0.5 standard errors in ``auto``
#: (``auto_g0.5``) was as close to the best as the default 1.0 (16/28) and safer (26/28
#: against 25/28), but 0.5 was found after every suite had been seen. Decision fixed in
#: advance: ``auto`` takes 0.5 only if here it is at least as good as 1.0 on both counts.
FOURTH: dict[str, Callable[[], dict]] = {
    "moons10": moons(10), "moons35": moons(35), "moons55": moons(55),
    "gauss0.75": covshift(0.75), "gauss1.75": covshift(1.75),
    "digits_rot20": digits("rotation", angle=20), "digits_rot35": digits("rotation", angle=35),
    "digits_noise2": digits("noise", noise_std=2), "digits_noise5": digits("noise", noise_std=5),
    "amazon_nyt": sentiment("amazon", "nyt"), "movies_nyt": sentiment("movies", "nyt"),
    "nyt_movies": sentiment("nyt", "movies"), "tweets_amazon": sentiment("tweets", "amazon"),
}
#: A fifth suite, fixed before its first run (2026-12-07, second session), the test of the
#: learned rule ``meta`` (benchmarks/selection_meta.py: its configuration was the best of
#: 16 under leave-one-suite-out on the four suites above, so those figures flatter it).
#: Here it is trained on all four. Decision fixed in advance: ``meta`` is worth building
#: into the library only if here it meets both acceptance figures (within 2 points of the
#: best on at least 75% of the problems, never more than 1 point below SourceOnly) and is
#: at least as good as ``auto`` on both. New angles, shifts and noise levels, new draws of
#: seen ones, and new samples (1000 texts, another seed) of four sentiment pairs.
FIFTH: dict[str, Callable[[], dict]] = {
    "moons5": moons(5), "moons15": moons(15), "moons65": moons(65),
    "moons30_rs1": moons(30, random_state=1), "moons50_rs1": moons(50, random_state=1),
    "gauss1.25": covshift(1.25), "gauss2.25": covshift(2.25),
    "gauss1_rs1": covshift(1.0, random_state=1),
    "digits_rot10": digits("rotation", angle=10), "digits_rot25": digits("rotation", angle=25),
    "digits_rot50": digits("rotation", angle=50), "digits_noise1": digits("noise", noise_std=1),
    "digits_noise7": digits("noise", noise_std=7),
    "movies_amazon_s1": sentiment("movies", "amazon", n=1000, sample=1),
    "tweets_nyt_s1": sentiment("tweets", "nyt", n=1000, sample=1),
    "amazon_movies_s1": sentiment("amazon", "movies", n=1000, sample=1),
    "nyt_tweets_s1": sentiment("nyt", "tweets", n=1000, sample=1),
}
SUITES = {"design": PROBLEMS, "heldout": HELDOUT, "fresh": FRESH, "fourth": FOURTH,
          "fifth": FIFTH}


def rules(board: Leaderboard, meta: MetaRule | None = None) -> dict[str, str | None]:
    """Rule name -> the method it picks on ``board`` (``meta``: the learned rule, trained
    on other suites)."""
    out: dict[str, str | None] = {}
    for c in board.criteria:
        if board.selected(c, reference=None) is not None:
            out[c] = board.selected(c, reference=None)
            out[c + "+safe"] = board.selected(c)
    out["auto"] = choose(board).method
    out["auto_g0.5"] = choose(board, guard_se=0.5).method
    out["cautious"] = choose(board, guard_se=CAUTIOUS_GUARD_SE).method
    out["agree"] = agree(board, ("reverse", "ensemble_entropy"))
    out["ensv"] = ensv(board)
    out["rank"] = mean_rank(board, ("reverse", "atc", "mixval"))
    if meta is not None:
        out["meta"] = meta.pick(board)
    return out


def mean_rank(board: Leaderboard, criteria: tuple[str, ...]) -> str:
    """The candidate with the best rank averaged over ``criteria`` (ties share a rank;
    a tie at the top keeps SourceOnly)."""
    from scipy.stats import rankdata

    means = {c: {m: float(np.mean(t)) for m in board.candidates
                 if (t := board.terms(m, c)) is not None} for c in criteria}
    names = [m for m in board.candidates if all(m in means[c] for c in criteria)]
    if not names:
        return "SourceOnly"
    total = np.zeros(len(names))
    for c in criteria:
        sign = 1 if board.criteria[c] else -1
        total += rankdata([sign * means[c][m] for m in names])
    top = np.flatnonzero(total == total.max())
    return "SourceOnly" if "SourceOnly" in [names[i] for i in top] else names[top[0]]


def ensv(board: Leaderboard) -> str:
    """EnsV (Hu, Luo, Liang and Foo, NeurIPS 2024): the candidate whose seed-averaged
    target predictions agree most often with the argmax of every candidate's averaged
    probabilities (the ensemble as pseudo-labels; it cannot pick the worst candidate)."""
    probas = {m: p for m in board.candidates if (p := board.mean_target_proba(m)) is not None}
    if not probas:
        return "SourceOnly"
    pseudo = np.mean(list(probas.values()), axis=0).argmax(1)
    agreement = {m: float(np.mean(p.argmax(1) == pseudo)) for m, p in probas.items()}
    return max(agreement, key=agreement.get)


def agree(board: Leaderboard, criteria: tuple[str, ...], z: float = 1.0) -> str:
    """The candidate with the largest mean paired z-score over SourceOnly among those
    more than ``z`` standard errors better on every criterion in ``criteria``."""
    zs: dict[str, list[float]] = {}
    for c in criteria:
        terms = {m: t for m in board.candidates if (t := board.terms(m, c)) is not None}
        if "SourceOnly" not in terms:
            return "SourceOnly"
        _, details = paired_choice(terms, greater_is_better=board.criteria[c],
                                   reference="SourceOnly")
        for m, d in details.items():
            adv, se = d["advantage"], d["se"]
            # se 0: identical terms (z 0) or a constant difference (z ±inf)
            zs.setdefault(m, []).append(adv / se if se > 0 else
                                        np.sign(adv) * np.inf if adv else 0.0)
    ok = {m: np.mean(np.minimum(v, 10.0)) for m, v in zs.items()
          if m != "SourceOnly" and len(v) == len(criteria) and min(v) > z}
    return max(ok, key=ok.get) if ok else "SourceOnly"


def reachable(board: Leaderboard, acc: dict[str, float]) -> bool:
    """Whether some criterion's top candidate is within 2 points of the best."""
    best = max(acc.values())
    for c, greater in board.criteria.items():
        means = {m: float(np.mean(board.terms(m, c))) for m in board.candidates
                 if board.terms(m, c) is not None and m in acc}
        if means and acc[(max if greater else min)(means, key=means.get)] >= best - NEAR:
            return True
    return False


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--suite", choices=SUITES, default="design",
                   help="design: the problems the rule was chosen on; heldout, fresh, "
                        "fourth, fifth: new ones (see FRESH, FOURTH, FIFTH)")
    p.add_argument("--problems", default=None, help="comma-separated subset of the suite")
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--json", default=None,
                   help="default benchmarks/out/selection[_heldout].json")
    p.add_argument("--boards", default=None,
                   help="where the scored leaderboards (without models) are kept")
    p.add_argument("--mixval-seed", type=int, default=0,
                   help="random_state of MixVal's partners (its score moves with them)")
    p.add_argument("--reuse", action="store_true",
                   help="re-evaluate the rules on the saved leaderboards, fitting nothing")
    p.add_argument("--summary", action="store_true",
                   help="totals per rule over every suite whose leaderboards are saved")
    args = p.parse_args()
    if args.summary:
        return summary()
    suite = SUITES[args.suite]
    tag = "" if args.suite == "design" else "_" + args.suite
    args.json = args.json or f"benchmarks/out/selection{tag}.json"
    args.boards = args.boards or str(_boards_path(args.suite))
    args.problems = args.problems or ",".join(suite)
    tk.methods()  # registers every family
    print(f"# {platform.processor() or platform.machine()}; seeds 0..{args.seeds - 1}; "
          f"candidates fitted on 75% of the source; accuracy on all target labels; "
          f"MixVal partners seed {args.mixval_seed}")
    meta = _meta(args.suite, _saved_boards())
    picks: dict[str, dict[str, str | None]] = {}
    acc: dict[str, dict[str, float]] = {}
    reach: dict[str, bool] = {}
    boards_path = Path(args.boards)
    boards = pickle.loads(boards_path.read_bytes()) if args.reuse else {}
    for name in args.problems.split(","):
        t = time.perf_counter()
        if args.reuse:
            if name not in boards:
                continue
            board = boards[name]
        else:
            spec = suite[name]()
            Xs, ys, Xt, yt = spec["data"]
            board = compare(spec["methods"], Xs, ys, Xt, y_eval=yt,
                            estimator=spec["estimator"], method_params=spec.get("params"),
                            seeds=args.seeds, n_jobs=args.n_jobs, progress=False,
                            selection=[tk.selection.MixVal(random_state=args.mixval_seed)
                                       if c == "mixval" else c for c in CRITERIA])
            board.models = {}
            boards[name] = board
            boards_path.parent.mkdir(parents=True, exist_ok=True)
            boards_path.write_bytes(pickle.dumps(boards))
        acc[name] = board.mean_scores()
        picks[name] = rules(board, meta)
        reach[name] = reachable(board, acc[name])
        best = max(acc[name], key=acc[name].get)
        print(f"{name}: {time.perf_counter() - t:.0f} s; SourceOnly "
              f"{acc[name]['SourceOnly']:.3f}, best {best} {acc[name][best]:.3f}; " + ", ".join(
                  f"{k}={v}" for k, v in picks[name].items()), flush=True)
    table(picks, acc, reach)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"accuracy": acc, "picks": picks, "reachable": reach},
                                          indent=1))


def _boards_path(suite: str, out: str = "benchmarks/out") -> Path:
    return Path(out) / f"selection_boards{'' if suite == 'design' else '_' + suite}.pkl"


def outcome(board: Leaderboard, method: str | None) -> tuple[float, float, float]:
    """Target accuracy of ``method``, of the best candidate and of SourceOnly."""
    acc = board.mean_scores()
    return acc.get(method, float("nan")), max(acc.values()), acc["SourceOnly"]


def _saved_boards() -> dict[str, dict[str, Leaderboard]]:
    """Suite -> its saved leaderboards, for every suite that has run."""
    return {s: pickle.loads(_boards_path(s).read_bytes()) for s in SUITES
            if _boards_path(s).exists()}


def _meta(exclude: str, saved: dict[str, dict[str, Leaderboard]]) -> MetaRule | None:
    """The learned rule trained on the ``saved`` suites but ``exclude`` (None if none)."""
    boards = [b for s, bs in saved.items() if s != exclude for b in bs.values()]
    return MetaRule().fit(boards) if boards else None


def summary() -> None:
    """Per rule, over every saved suite: problems within 2 points of the best, not more
    than 1 point below SourceOnly, the mean gain over SourceOnly and the worst loss
    (``meta`` trained on the other suites each time)."""
    tally: dict[str, list[tuple[str, float, float, float]]] = {}
    saved = _saved_boards()
    suites = list(saved)
    for suite in suites:
        meta = _meta(suite, saved)
        for board in saved[suite].values():
            for rule, method in rules(board, meta).items():
                tally.setdefault(rule, []).append((suite, *outcome(board, method)))
    print(f"{'rule':22s} " + " ".join(f"{s:>9s}" for s in suites)
          + "   within 2 pts   ≥ SO − 1 pt   mean vs SO   worst vs SO")
    for rule, rows in tally.items():
        figs = np.array([figures(*r[1:]) for r in rows])
        suite_of = np.array([r[0] for r in rows])
        per = " ".join(f"{figs[suite_of == s, 0].sum()}/{figs[suite_of == s, 1].sum():<3d}"
                       .rjust(9) for s in suites)
        gain = [a - so for _, a, _, so in rows]
        print(f"{rule:22s} {per}   {figs[:, 0].sum():>5d}/{len(rows):<5d}"
              f"    {figs[:, 1].sum():>5d}/{len(rows):<5d}"
              f"   {np.mean(gain):+10.3f}   {min(gain):+11.3f}")
    print("(per suite: within 2 pts / not more than 1 pt below SourceOnly)")


def table(picks: dict[str, dict[str, str | None]], acc: dict[str, dict[str, float]],
          reach: dict[str, bool]) -> None:
    names = list(picks)
    rule_names = list(next(iter(picks.values())))
    print(f"\n{'rule':14s} " + " ".join(f"{n[:12]:>12s}" for n in names)
          + "  within 2 pts  ≥ SO − 1 pt  mean vs SO  worst vs SO")
    best = {n: max(acc[n].values()) for n in names}
    so = {n: acc[n]["SourceOnly"] for n in names}
    print(f"{'(best)':14s} " + " ".join(f"{best[n]:12.3f}" for n in names))
    print(f"{'(SourceOnly)':14s} " + " ".join(f"{so[n]:12.3f}" for n in names))
    print(f"{'(reachable)':14s} " + " ".join(f"{'yes' if reach[n] else 'no':>12s}"
                                             for n in names)
          + f"  {sum(reach.values()):>5d}/{len(names):<5d}")
    for r in rule_names:
        got = {n: acc[n].get(picks[n][r], float("nan")) for n in names}
        near, safe = np.sum([figures(got[n], best[n], so[n]) for n in names], axis=0)
        gain = [got[n] - so[n] for n in names]
        print(f"{r:14s} " + " ".join(f"{got[n]:12.3f}" for n in names)
              + f"  {near:>5d}/{len(names):<5d}  {safe:>5d}/{len(names):<5d}"
              f"  {np.mean(gain):+10.3f}  {min(gain):+11.3f}")


if __name__ == "__main__":
    main()
