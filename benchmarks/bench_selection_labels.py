"""How many labelled target rows make the choice reliable? (reads bench_selection's boards)

    python benchmarks/bench_selection_labels.py [--labels 10,20,50,100] [--draws 200]

For every problem of the three selection suites (``bench_selection.py --suite design``,
``heldout``, ``fresh`` must have run: their saved leaderboards are read, nothing is
fitted), draw ``k`` target rows at random, as if a person had labelled them, and choose
among the already fitted candidates by their accuracy on those rows, leaving SourceOnly
only when a candidate is ahead by more than its paired standard error allows at 95%
(:func:`transferkit.selection.paired_choice`, what ``target_cv`` feeds ``choose``). The
labels only choose: no candidate trains on them. The table shows, averaged over
``draws`` draws, on how many problems of each suite the choice is within 2 points of the
best candidate and not more than 1 point below SourceOnly (accuracy on all target rows,
as in ``bench_selection.py``), beside the label-free ``auto`` rule.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from transferkit.selection import choose, paired_choice

SUITES = {"design": "selection_boards.pkl", "heldout": "selection_boards_heldout.pkl",
          "fresh": "selection_boards_fresh.pkl"}


def figures(board, pick: str) -> tuple[bool, bool]:
    acc = {r["method"]: r[board.score_key] for r in board.rows
           if r[board.score_key] is not None}
    best, so = max(acc.values()), acc["SourceOnly"]
    return acc[pick] >= best - 0.02, acc[pick] >= so - 0.01


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--labels", default="10,20,50,100")
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--out", default="benchmarks/out", help="where the boards are")
    args = p.parse_args()
    ks = [int(k) for k in args.labels.split(",")]
    rng = np.random.default_rng(0)
    print(f"# {args.draws} draws of k labelled target rows per problem; mean number of "
          "problems within 2 points of the best / not below SourceOnly − 1 point")
    header = f"{'rule':10s}" + "".join(f"{s:>22s}" for s in SUITES)
    print(header)
    boards = {s: pickle.loads((Path(args.out) / f).read_bytes()) for s, f in SUITES.items()}
    line = f"{'auto':10s}"
    for bs in boards.values():
        got = np.array([figures(b, choose(b).method) for b in bs.values()])
        line += f"{f'{got[:, 0].sum()}/{len(bs)}, {got[:, 1].sum()}/{len(bs)}':>22s}"
    print(line)
    for k in ks:
        line = f"{f'{k} labels':10s}"
        for bs in boards.values():
            near = safe = 0.0
            for b in bs.values():
                terms = {m: t for m in b.candidates if (t := b.terms(m, "eval")) is not None}
                n = len(next(iter(terms.values())))
                for _ in range(args.draws):
                    rows = rng.choice(n, min(k, n), replace=False)
                    pick, _ = paired_choice({m: t[rows] for m, t in terms.items()},
                                            greater_is_better=True, reference="SourceOnly")
                    a, s = figures(b, pick)
                    near += a / args.draws
                    safe += s / args.draws
            line += f"{f'{near:.1f}/{len(bs)}, {safe:.1f}/{len(bs)}':>22s}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
