"""How many labelled target rows make the choice reliable? (reads bench_selection's boards)

    python benchmarks/bench_selection_labels.py [--labels 10,20,50,100] [--draws 200]

For every problem of the five selection suites (``bench_selection.py --suite design``,
``heldout``, ``fresh``, ``fourth``, ``fifth`` must have run: their saved leaderboards
are read, nothing is fitted), draw ``k`` target rows at random, as if a person had
labelled them, and choose among the already fitted candidates by their accuracy on those
rows, leaving SourceOnly only when a candidate is ahead by more than its paired standard
error allows at 95% (:func:`transferkit.selection.paired_choice`, what ``target_cv``
feeds ``choose``). The labels only choose: no candidate trains on them. The table shows,
averaged over ``draws`` draws, on how many problems of each suite the choice is within 2
points of the best candidate and not more than 1 point below SourceOnly (accuracy on all
target rows, as in ``bench_selection.py``), beside the label-free ``auto`` and
``cautious`` rules.
"""

from __future__ import annotations

import argparse
import pickle

import numpy as np

from bench_selection import SUITES, _boards_path, figures  # a sibling: benchmarks/ is on the path
from transferkit.selection import choose, paired_choice
from transferkit.selection.choice import CAUTIOUS_GUARD_SE


def method_figures(board) -> dict[str, tuple[bool, bool]]:
    """Per method: (within 2 points of the best, not more than 1 point below SourceOnly)."""
    acc = board.mean_scores()
    best, so = max(acc.values()), acc["SourceOnly"]
    return {m: figures(a, best, so) for m, a in acc.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--labels", default="10,20,50,100")
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--out", default="benchmarks/out", help="where the boards are")
    args = p.parse_args()
    ks = [int(k) for k in args.labels.split(",")]
    print(f"# {args.draws} draws of k labelled target rows per problem; mean number of "
          "problems within 2 points of the best / not below SourceOnly − 1 point")
    header = f"{'rule':10s}" + "".join(f"{s:>22s}" for s in SUITES)
    print(header)
    boards = {s: pickle.loads(_boards_path(s, args.out).read_bytes()) for s in SUITES}
    # per suite, per problem: the figures of each method, its per-row target accuracy and
    # the label-free picks
    prepared = {s: [(method_figures(b), {m: t for m in b.candidates
                                  if (t := b.terms(m, "eval")) is not None},
                     {"auto": choose(b).method,
                      "cautious": choose(b, guard_se=CAUTIOUS_GUARD_SE).method})
                    for b in bs.values()] for s, bs in boards.items()}
    for rule in ("auto", "cautious"):
        line = f"{rule:10s}"
        for probs in prepared.values():
            got = np.array([figs[picks[rule]] for figs, _, picks in probs])
            line += f"{f'{got[:, 0].sum()}/{len(probs)}, {got[:, 1].sum()}/{len(probs)}':>22s}"
        print(line)
    for k in ks:
        line = f"{f'{k} labels':10s}"
        for i, probs in enumerate(prepared.values()):
            rng = np.random.default_rng([k, i])  # a suite's draws do not depend on the others
            near = safe = 0.0
            for figs, terms, _ in probs:
                n = len(next(iter(terms.values())))
                for _ in range(args.draws):
                    rows = rng.choice(n, min(k, n), replace=False)
                    pick, _ = paired_choice({m: t[rows] for m, t in terms.items()},
                                            greater_is_better=True, reference="SourceOnly")
                    near += figs[pick][0] / args.draws
                    safe += figs[pick][1] / args.draws
            line += f"{f'{near:.1f}/{len(probs)}, {safe:.1f}/{len(probs)}':>22s}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
