"""A learned selection rule, for the benchmark only: which candidate gains over source-only?

Every label-free criterion is a noisy signal of a candidate's target accuracy, and which
one to trust depends on the problem. Instead of a hand-written rule, a small gradient-
boosted regressor learns, from problems where the target labels are known, to predict a
candidate's target-accuracy gain over SourceOnly from its paired z-scores against
SourceOnly on every criterion (clipped to ±10) and its kind (weighting, shallow feature
method, deep network). The rule picks the candidate with the largest predicted gain if
that exceeds ``tau`` (else SourceOnly).

``bench_selection.py`` trains it on the saved leaderboards of the *other* suites, so its
figures on a suite are out of sample (leave one suite out). The configuration
(``max_depth=2``, 100 trees, rate 0.05, ``tau=0.05``, z-scores of the eight criteria
below) was the best of 16 tried that way on the first four suites, so those figures are
optimistic; ``--suite fifth`` is its test (:data:`bench_selection.FIFTH`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from transferkit.selection.compare import Leaderboard

CRITERIA = ("reverse", "ensemble_entropy", "entropy", "atc", "iwcv", "dev", "snd", "mixval")
#: the kind of every candidate the suites compare (a new one must be added here)
KINDS = {"KMM": 0, "KLIEP": 0, "ClassifierWeighting": 0, "CORAL": 1, "SA": 1, "TCA": 1,
         "DANN": 2, "DeepCORAL": 2, "DAN": 2, "MDD": 2}


def features(board: Leaderboard) -> dict[str, np.ndarray]:
    """Per candidate other than SourceOnly: z-scores against it on :data:`CRITERIA`
    (0 where a criterion is missing, the same as no difference: every board of the
    suites has all eight) and the candidate's kind, one-hot."""
    z: dict[str, dict[str, float]] = {}
    for c in CRITERIA:
        res = board.selection_details(c) if c in board.criteria else None
        if res is None:
            continue
        for m, d in res[1].items():
            if m == "SourceOnly" or "advantage" not in d:
                continue
            adv, se = d["advantage"], d["se"]
            val = adv / se if se > 0 else 10.0 * np.sign(adv)
            z.setdefault(m, {})[c] = float(np.clip(np.nan_to_num(val), -10, 10))
    return {m: np.array([zs.get(c, 0.0) for c in CRITERIA]
                        + [float(KINDS[m] == k) for k in range(3)])
            for m, zs in z.items()}


def gains(board: Leaderboard) -> dict[str, float]:
    acc = board.mean_scores()
    return {m: a - acc["SourceOnly"] for m, a in acc.items()}


class MetaRule:
    """Fit on leaderboards with target accuracy; pick on any leaderboard."""

    def __init__(self, tau: float = 0.05):
        self.tau = tau

    def fit(self, boards: Iterable[Leaderboard]) -> MetaRule:
        from sklearn.ensemble import GradientBoostingRegressor

        X, y = [], []
        for board in boards:
            g = gains(board)
            for m, x in features(board).items():
                if m in g:
                    X.append(x)
                    y.append(g[m])
        self.model_ = GradientBoostingRegressor(max_depth=2, n_estimators=100,
                                                learning_rate=0.05, random_state=0)
        self.model_.fit(np.array(X), np.array(y))
        self.n_rows_ = len(y)
        return self

    def pick(self, board: Leaderboard) -> str:
        feats = features(board)
        if not feats:
            return "SourceOnly"
        names = list(feats)
        pred = self.model_.predict(np.array([feats[m] for m in names]))
        return names[int(np.argmax(pred))] if pred.max() > self.tau else "SourceOnly"
