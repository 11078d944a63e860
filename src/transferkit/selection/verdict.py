"""The verdict: does transfer help here, and what should the user run?

The chosen method (:func:`~transferkit.selection.choose`, label-free) is set against
source-only, against target-only when target labels were given for training, and
against chance. With held-out target labels the comparison is measured: per target row,
the method's correctness (or R² term) averaged over seeds minus source-only's, whose
mean and standard error give a 95% interval that covers both the test-set sampling and
the seed-to-seed spread. Without them the verdict rests on the shift test and the
label-free choice and says it is unverified.

Possible decisions:

``"transfer_helps"``
    The chosen method beats source-only (significantly, when measured).
``"transfer_hurts"``
    The chosen method is significantly worse than source-only, or target-only beats
    every source-trained model, or source-trained models do no better than chance on
    the target (its labelling rule contradicts the source): use ``use`` instead.
``"no_shift"``
    No significant shift between the domains and no measured gain: source-only is enough.
``"no_gain"``
    The domains differ but no method measurably beats source-only: keep source-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .choice import Choice
from .compare import Leaderboard
from .criteria import mean_se

__all__ = ["Verdict", "judge", "paired_difference"]

_Z95 = 1.959963984540054


@dataclass
class Verdict:
    """The answer of :func:`judge`.

    Attributes
    ----------
    decision : str
        ``"transfer_helps"``, ``"transfer_hurts"``, ``"no_shift"`` or ``"no_gain"``.
    use : str
        The method to use (``"TargetOnly"`` also when it was not run but target labels
        are the way forward).
    headline : str
        One sentence: the decision in words.
    reasons : list of str
        The evidence, in order of weight.
    verified : bool
        Whether held-out target labels measured the decision.
    selected : str or None
        The label-free choice.
    evidence : dict
        Numbers behind the reasons (paired differences with intervals, chance level,
        the shift test).
    """

    decision: str
    use: str
    headline: str
    reasons: list[str] = field(default_factory=list)
    verified: bool = False
    selected: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "use": self.use, "headline": self.headline,
                "reasons": list(self.reasons), "verified": self.verified,
                "selected": self.selected, "evidence": self.evidence}

    def __str__(self) -> str:
        return "\n".join([self.headline, *("- " + r for r in self.reasons)])


def paired_difference(board: Leaderboard, a: str, b: str) -> dict[str, float] | None:
    """Mean and 95% interval of score(a) − score(b), paired over the evaluation rows.

    Each row's term (correct or not; an R² term in regression) is averaged over the
    method's seeds first, so the interval reflects both which target rows were labelled
    and how much the fits vary. None when either method has no evaluation terms."""
    ta, tb = board.terms(a, "eval"), board.terms(b, "eval")
    if ta is None or tb is None or ta.size == 0:
        return None
    mean, se = mean_se(ta - tb)
    return {"mean": mean, "se": se, "low": mean - _Z95 * se, "high": mean + _Z95 * se,
            "n_rows": int(ta.size)}


def _fmt(d: dict[str, float], metric: str) -> str:
    return (f"{d['mean']:+.3f} {metric} (95% interval {d['low']:+.3f} to {d['high']:+.3f}, "
            f"{d['n_rows']} labelled target rows)")


def judge(board: Leaderboard, choice: Choice, shift: Any = None, *,
          chance: float | None = None, reference: str = "SourceOnly",
          target_only: str = "TargetOnly") -> Verdict:
    """Decide whether transfer helps, from a scored leaderboard and a label-free choice.

    Parameters
    ----------
    board : Leaderboard
        From :func:`~transferkit.selection.compare` (with ``y_eval`` for a measured
        verdict).
    choice : Choice
        The label-free choice (:func:`~transferkit.selection.choose`).
    shift : ShiftReport or dict, optional
        ``transferkit.diagnose(...)`` or its ``to_dict()`` (reads ``shift_detected`` and
        ``summary``).
    chance : float, optional
        Score of a model that ignores the inputs (majority-class accuracy; 0 for R²).
        None: no chance check.
    reference, target_only : str
        Names of the source-only and target-only baselines on the board.

    Returns
    -------
    Verdict
    """
    metric = "accuracy" if board.metric == "accuracy" else "R²"
    selected = choice.method
    reasons = list(choice.reasons)
    evidence: dict[str, Any] = {}
    if hasattr(shift, "to_dict"):  # the ShiftReport itself
        shift = shift.to_dict()
    shifted = None if shift is None else bool(shift.get("shift_detected"))
    if shift is not None:
        evidence["shift_detected"] = shifted
        evidence["mmd_p_value"] = (shift.get("mmd") or {}).get("p_value")
    shift_line = None if shift is None else str(shift.get("summary", "")).split(". ")[0] + "."

    if selected is None:
        return Verdict("no_gain", reference, f"No method could be scored; use {reference}.",
                       reasons, False, None, evidence)
    if not board.ran(reference):
        # no baseline ran: nothing to measure the choice against, nothing else to advise
        reasons.insert(0, f"{reference} did not run (or failed on every seed), so there is "
                          f"no baseline to measure {selected} against.")
        return Verdict("no_gain", selected, f"No baseline to compare with: use {selected}, "
                       "unmeasured.", reasons, False, selected, evidence)
    measured = board.n_eval > 0 and board.terms(selected, "eval") is not None

    if not measured:
        if shift_line:
            reasons.append(shift_line)
        reasons.append("No labelled target rows were held out, so this is not measured; "
                       "label a few dozen target rows to confirm it.")
        if shifted is False:
            return Verdict("no_shift", reference, f"No shift detected: {reference} is "
                           "enough (a change in the labelling rule itself cannot be seen "
                           "without target labels).", reasons, False, selected, evidence)
        if selected != reference:
            if choice.rule == "default":
                reasons.append("A label-free choice is sometimes worse than source-only "
                               "(see docs/benchmarks.md); the cautious rule (transferkit "
                               "run --cautious, or choose(board, guard_se="
                               "CAUTIOUS_GUARD_SE)) switches only on two kinds of "
                               "evidence, which is safer.")
            how = ("chosen by cross-validation on the target labels given for training"
                   if choice.rule == "target_cv" else
                   "chosen without target labels; unverified")
            return Verdict("transfer_helps", selected, f"Transfer is expected to help: use "
                           f"{selected} ({how}).", reasons, False, selected, evidence)
        return Verdict("no_gain", reference, f"No method is expected to beat {reference}: "
                       f"use {reference}.", reasons, False, selected, evidence)

    # Measured on held-out target labels.
    sel_mean, sel_se = mean_se(board.terms(selected, "eval"))
    evidence["selected_score"] = {"mean": sel_mean, "se": sel_se}
    vs_ref = paired_difference(board, selected, reference) if reference in board else None
    if vs_ref is not None:
        evidence["selected_minus_reference"] = vs_ref

    if shift_line:  # context for the measured decisions below
        reasons.append(shift_line)

    # 1. Target-only, chosen or beating everything trained with the source: no transfer.
    if target_only in board and board.terms(target_only, "eval") is not None:
        rivals = [m for m in board.candidates if m != target_only
                  and board.terms(m, "eval") is not None]
        gaps = {m: paired_difference(board, target_only, m) for m in rivals}
        evidence["target_only_minus"] = gaps
        beaten = bool(gaps) and all(g is not None and g["low"] > 0 for g in gaps.values())
        if gaps and (beaten or selected == target_only):
            closest, g = min(gaps.items(), key=lambda kv: kv[1]["mean"])
            how = ("beats every model trained with the source" if beaten else
                   "was chosen over every model trained with the source")
            reasons.insert(0, f"{target_only}, trained on the labelled target rows alone, "
                              f"{how}: {_fmt(g, metric)} against the closest, {closest}.")
            return Verdict("transfer_hurts", target_only, f"Transfer hurts: use "
                           f"{target_only} instead.", reasons, True, selected, evidence)

    # 2. Source-trained models no better than chance: the labelling rule contradicts.
    if chance is not None:
        evidence["chance"] = chance
        best_src = max((m for m in dict.fromkeys((selected, reference)) if m in board
                        and board.terms(m, "eval") is not None),
                       key=lambda m: float(board.terms(m, "eval").mean()))
        mean, se = mean_se(board.terms(best_src, "eval"))
        if mean - _Z95 * se <= chance:
            reasons.insert(0, f"Models trained on the source score {mean:.3f} {metric} on the "
                              f"target (± {_Z95 * se:.3f}), no better than chance "
                              f"({chance:.3f}): the target's labelling does not follow the "
                              "source's.")
            return Verdict("transfer_hurts", target_only, "Transfer hurts: the source does "
                           f"not carry over; label target data and use {target_only} "
                           "instead.", reasons, True, selected, evidence)

    # 3. The chosen method against source-only.
    if vs_ref is not None and selected != reference:
        if vs_ref["low"] > 0:
            reasons.insert(0, f"{selected} beats {reference} by {_fmt(vs_ref, metric)}.")
            return Verdict("transfer_helps", selected, f"Transfer helps: use {selected}.",
                           reasons, True, selected, evidence)
        if vs_ref["high"] < 0:
            reasons.insert(0, f"{selected} scores below {reference}: {_fmt(vs_ref, metric)}.")
            return Verdict("transfer_hurts", reference, f"Transfer hurts: use {reference} "
                           "instead.", reasons, True, selected, evidence)
        reasons.insert(0, f"{selected} vs {reference}: {_fmt(vs_ref, metric)}, not a "
                          "measurable difference.")
    _hindsight(board, reference, metric, reasons, evidence)
    if shift_line:  # the deciding fact here: move it to the top
        reasons.remove(shift_line)
        reasons.insert(0, shift_line)
    if shifted is False:
        return Verdict("no_shift", reference, f"No shift: {reference} is enough.", reasons,
                       True, selected, evidence)
    return Verdict("no_gain", reference, f"The domains differ, but no method measurably "
                   f"beats {reference}: use {reference}.", reasons, True, selected, evidence)


def _hindsight(board: Leaderboard, reference: str, metric: str, reasons: list[str],
               evidence: dict[str, Any]) -> None:
    """Note a method that the held-out labels show to be better (chosen by those labels,
    so optimistic: reported, not recommended)."""
    best = board.best()
    if best is None or best == reference or reference not in board:
        return
    d = paired_difference(board, best, reference)
    if d is not None and d["low"] > 0:
        evidence["best_by_target_labels"] = {"method": best, **d}
        reasons.append(f"In hindsight {best} beats {reference} on the labelled target rows "
                       f"by {_fmt(d, metric)}, but no label-free criterion could tell; it "
                       "was picked by the test labels, so treat it as a lead to confirm "
                       "on fresh labels.")
