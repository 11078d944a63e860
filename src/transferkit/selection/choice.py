"""Which method to use, chosen without target labels: the rule ``transferkit run`` follows.

No single label-free criterion is reliable across shifts. Importance-weighted validation
(IWCV) estimates the target risk from held-out source rows, so it sees a method that
breaks what the source taught, but it is blind where the target has no source support
(on rotated Two Moons every candidate scores zero error). Prediction entropy sees how
confidently a model separates the target, but rewards confident mistakes. The rule
combines them, and keeps source-only unless the evidence is paired and clear:

1. with target labels given for training (``target_cv`` scored): target cross-validation,
   safe against source-only;
2. otherwise, candidates whose IWCV error is not significantly above source-only's
   (a guard) compete on the entropy of their seed-averaged target predictions
   (classification; a method whose seeds disagree on the target is uncertain there even
   if each seed is confident), or on IWCV itself (regression); a candidate replaces
   source-only only when it is significantly better
   (:func:`~transferkit.selection.criteria.paired_choice`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compare import Leaderboard
from .criteria import paired_choice

__all__ = ["Choice", "choose", "AUTO_CRITERIA"]

#: The criteria :func:`choose` reads (pass them to ``compare(selection=...)``).
AUTO_CRITERIA = ("iwcv", "entropy")


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


def choose(board: Leaderboard, *, reference: str = "SourceOnly", confidence: float = 0.95
           ) -> Choice:
    """Choose a method from a leaderboard scored with label-free criteria.

    Parameters
    ----------
    board : Leaderboard
        From ``compare(..., selection=AUTO_CRITERIA)`` (add ``"target_cv"`` when target
        labels are given for training); criteria it lacks are skipped.
    reference : str, default="SourceOnly"
        The method kept unless another is significantly better.
    confidence : float, default=0.95
        One-sided confidence of the paired comparisons.

    Returns
    -------
    Choice
    """
    if reference not in board:
        reference = None
    if "target_cv" in board.criteria and _scored(board, "target_cv"):
        method, details = paired_choice(_scored(board, "target_cv"), greater_is_better=True,
                                        reference=reference, confidence=confidence)
        return Choice(method, "target_cv", [_why(method, reference, "target_cv", details)],
                      details=details)
    excluded: dict[str, str] = {}
    reasons: list[str] = []
    if "iwcv" in board.criteria and reference is not None:
        iwcv = _scored(board, "iwcv")
        if reference in iwcv:
            # The guard: a candidate significantly *worse* than the reference on the
            # importance-weighted source error is out (reference plays the candidate).
            for m, t in iwcv.items():
                if m == reference:
                    continue
                pick, det = paired_choice({reference: iwcv[reference], m: t},
                                          greater_is_better=False, reference=m,
                                          confidence=confidence)
                if pick == reference:
                    excluded[m] = (f"importance-weighted source error {det[m]['mean']:.3f} vs "
                                   f"{det[reference]['mean']:.3f} for {reference}")
            if excluded:
                reasons.append(f"IWCV ruled out {', '.join(excluded)}: their importance-"
                               f"weighted error on held-out source rows is significantly "
                               f"above {reference}'s.")
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
