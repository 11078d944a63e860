"""Which method to use, chosen without target labels: the rule ``transferkit run`` follows.

No single label-free criterion is reliable across shifts. Reverse validation (a model
trained on a candidate's target pseudo-labels, scored on held-out source rows) sees a
candidate whose target labelling breaks what the source taught, but it is blind where
every candidate labels the target consistently with the source (on rotated Two Moons all
score perfectly). Prediction entropy sees how confidently a model separates the target,
but rewards confident mistakes. The rule combines them, and keeps source-only unless the
evidence is paired and clear:

1. with target labels given for training (``target_cv`` scored): target cross-validation,
   safe against source-only;
2. otherwise, a guard removes every candidate whose reverse-validation score is more than
   ``guard_se`` paired standard errors below source-only's (a one-standard-error rule:
   it only has to protect, so it acts on weaker evidence than a switch needs); the rest
   compete on the entropy of their seed-averaged target predictions (classification; a
   method whose seeds disagree on the target is uncertain there even if each seed is
   confident), or on IWCV (regression); a candidate replaces source-only only when it is
   significantly better (:func:`~transferkit.selection.criteria.paired_choice`).

On the ten shift problems it was chosen on (``benchmarks/bench_selection.py``,
``docs/benchmarks.md``) this rule is never more than one point below source-only and within
two points of the best candidate on seven; an IWCV guard in place of reverse validation
removed the best candidate where the density ratio degenerates (Two Moons at 60°). On
eight further problems (``--suite heldout``) it was within two points on three and fell
more than one point below source-only on two (worst: 2.0 points); on ten problems fixed
after it (``--suite fresh``) within two points on six, below on one (2.4 points). Treat the
choice as a good default, not a guarantee; the verdict measures it when target labels
exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from .compare import Leaderboard
from .criteria import paired_choice

__all__ = ["Choice", "choose", "AUTO_CRITERIA", "GUARD"]

#: The criteria :func:`choose` reads (pass them to ``compare(selection=...)``).
AUTO_CRITERIA = ("reverse", "iwcv", "entropy")

#: The criterion that guards against candidates worse than source-only.
GUARD = "reverse"


@dataclass
class Choice:
    """What :func:`choose` returns.

    Attributes
    ----------
    method : str or None
        The chosen method (None when nothing could be scored).
    criterion : str or None
        The criterion that ranked the candidates.
    reasons : list of str
        Why, in sentences a report can show.
    excluded : dict of str -> str
        Candidates the guard removed, with the reason.
    details : dict
        Per method: the ranking criterion's ``mean``, ``advantage`` over the reference,
        ``se`` and ``significant``.
    """

    method: str | None
    criterion: str | None
    reasons: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "criterion": self.criterion,
                "reasons": list(self.reasons), "excluded": dict(self.excluded),
                "details": self.details}


def _scored(board: Leaderboard, criterion: str) -> dict[str, Any]:
    return {m: t for m in board.candidates if (t := board.terms(m, criterion)) is not None}


def choose(board: Leaderboard, *, reference: str = "SourceOnly", confidence: float = 0.95,
           guard_se: float = 1.0) -> Choice:
    """Choose a method from a leaderboard scored with label-free criteria.

    Parameters
    ----------
    board : Leaderboard
        From ``compare(..., selection=AUTO_CRITERIA)`` (add ``"target_cv"`` when target
        labels are given for training); criteria it lacks are skipped.
    reference : str, default="SourceOnly"
        The method kept unless another is significantly better.
    confidence : float, default=0.95
        One-sided confidence a candidate needs to replace the reference.
    guard_se : float, default=1.0
        A candidate whose reverse-validation score is more than this many paired
        standard errors below the reference's is excluded (``np.inf`` turns the guard off).

    Returns
    -------
    Choice
    """
    if not guard_se >= 0:
        raise ParameterError(f"guard_se must be a number of standard errors >= 0 (np.inf "
                             f"turns the guard off); got {guard_se!r}.")
    if reference not in board:
        reference = None
    if "target_cv" in board.criteria and _scored(board, "target_cv"):
        method, details = paired_choice(_scored(board, "target_cv"), greater_is_better=True,
                                        reference=reference, confidence=confidence)
        return Choice(method, "target_cv", [_why(method, reference, "target_cv", details)],
                      details=details)
    excluded = _guard(board, reference, guard_se) if reference is not None else {}
    reasons: list[str] = []
    if excluded:
        reasons.append(f"Reverse validation ruled out {', '.join(excluded)}: a model "
                       "trained on their target predictions predicts held-out source rows "
                       f"worse than one trained on {reference}'s.")
    rank = next((c for c in ("ensemble_entropy", "entropy", "iwcv")
                 if c in board.criteria and _scored(board, c)), None)
    if rank is None:
        return Choice(reference, None, reasons + [
            f"No label-free criterion could score the candidates here, so {reference} is "
            "kept."], excluded)
    terms = {m: t for m, t in _scored(board, rank).items() if m not in excluded}
    if not terms:
        return Choice(reference, None, reasons + [
            f"No candidate has a label-free score, so {reference} is kept."], excluded)
    method, details = paired_choice(terms, greater_is_better=board.criteria[rank],
                                    reference=reference if reference in terms else None,
                                    confidence=confidence)
    reasons.append(_why(method, reference, rank, details))
    return Choice(method, rank, reasons, excluded, details)


def _guard(board: Leaderboard, reference: str, guard_se: float) -> dict[str, str]:
    """Candidates significantly worse than ``reference`` on :data:`GUARD`, with why."""
    scored = _scored(board, GUARD) if GUARD in board.criteria else {}
    if reference not in scored or not any(np.isfinite(np.mean(t)) for t in scored.values()):
        return {}
    _, details = paired_choice(scored, greater_is_better=board.criteria[GUARD],
                               reference=reference)
    return {m: (f"reverse-validation score {d['mean']:.3f} vs "
                f"{details[reference]['mean']:.3f} for {reference} "
                f"({d['advantage']:+.3f} ± {d['se']:.3f})")
            for m, d in details.items()
            if m != reference and d["advantage"] < -guard_se * d["se"]}


_DESCRIBE = {"entropy": "mean prediction entropy on the target (lower: more confident)",
             "ensemble_entropy": "entropy of its seed-averaged target predictions (lower: "
                                 "confident and reproducible)",
             "iwcv": "importance-weighted error on held-out source rows",
             "target_cv": "cross-validated accuracy on the labelled target rows"}


def _why(method: str, reference: str | None, criterion: str,
         details: dict[str, dict[str, Any]]) -> str:
    what = _DESCRIBE.get(criterion, criterion)
    d = details[method]
    if reference is None or method != reference:
        extra = ("" if reference is None else
                 f", better than {reference} by {d['advantage']:.3f} ± {d['se']:.3f}")
        return f"{method} has the best {what}: {d['mean']:.3f}{extra}."
    return (f"No candidate beats {reference} on {what} by more than its paired standard "
            f"error, so {reference} is kept.")
