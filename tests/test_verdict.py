"""The verdict and the label-free choice behind it (transferkit.selection.choice/verdict).

The three constructed cases of the issue, each run end to end through ``execute``: no
shift (source-only is enough), a shift that adaptation fixes (transfer helps), and a
target whose labelling rule contradicts the source (transfer hurts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transferkit as tk
from transferkit.pipeline import execute
from transferkit.selection import choose, compare, paired_choice
from transferkit.selection.verdict import judge, paired_difference


def _frames(Xs, ys, Xt, yt):
    cols = [f"x{i}" for i in range(Xs.shape[1])]
    src = pd.DataFrame(Xs, columns=cols).assign(y=ys)
    tgt = pd.DataFrame(Xt, columns=cols).assign(y=yt)
    return src, tgt


# --------------------------------------------------------------------------- paired choice
def test_paired_choice_leaves_the_reference_only_on_clear_evidence():
    rng = np.random.default_rng(0)
    ref = rng.random(400)
    noisy = ref + rng.normal(0, 0.3, 400) + 0.01  # better on average, within the noise
    clear = ref + 0.2
    pick, det = paired_choice({"ref": ref, "noisy": noisy}, greater_is_better=True,
                              reference="ref")
    assert pick == "ref" and not det["noisy"]["significant"]
    assert paired_choice({"ref": ref, "noisy": noisy}, greater_is_better=True)[0] == "noisy"
    pick, det = paired_choice({"ref": ref, "noisy": noisy, "clear": clear},
                              greater_is_better=True, reference="ref")
    assert pick == "clear" and det["clear"]["advantage"] == pytest.approx(0.2)
    # lower-is-better criteria flip the sign
    assert paired_choice({"ref": ref, "clear": clear}, greater_is_better=False,
                         reference="ref")[0] == "ref"


def test_paired_choice_rejects_mismatched_rows():
    with pytest.raises(tk.errors.InputError, match="same rows"):
        paired_choice({"a": np.ones(3), "b": np.ones(4)}, greater_is_better=True,
                      reference="a")


def test_label_free_ties_are_not_broken_by_the_target_labels():
    """Two methods a criterion cannot tell apart: the choice must follow the order they
    were given in, not the leaderboard order (which is the ranking by target labels)."""
    from transferkit.selection import Leaderboard

    def result(method, acc):
        return {"method": method, "seed": 0, "score": acc, "error": None,
                "eval_terms": np.full(10, acc), "selection_terms": {"iwcv": np.zeros(10)},
                "selection_scores": {"iwcv": 0.0}}

    results = [result("A", 0.5), result("B", 0.9)]
    rows = [{"method": "B", "target_accuracy_mean": 0.9},
            {"method": "A", "target_accuracy_mean": 0.5}]
    board = Leaderboard("classification", rows, results, {}, n_eval=10, seeds=[0],
                        selection="iwcv", criteria={"iwcv": False})
    assert board.methods == ["B", "A"] and board.candidates == ["A", "B"]
    assert board.selected(reference=None) == "A"
    assert board.selected(reference="B") == "B"  # no evidence against the reference


def test_reverse_validation_guard_removes_a_confident_but_wrong_candidate():
    """The noisy-digits failure in miniature: "Confident" has the lowest target entropy
    but a reverse model trained on its target labels gets the source wrong; the guard
    removes it and the next most confident candidate, no worse on reverse, is chosen."""
    from transferkit.selection import Leaderboard

    rng = np.random.default_rng(0)
    n = 300
    so_rev = (rng.random(n) < 0.9).astype(float)
    worse_rev = so_rev * (rng.random(n) > 0.08)  # about 7 points below, row-paired
    spec = {"SourceOnly": (so_rev, 0.60), "Confident": (worse_rev, 0.10),
            "Good": (so_rev, 0.30)}
    results = [{"method": m, "seed": 0, "score": 0.5, "error": None,
                "eval_terms": np.full(n, 0.5),
                "selection_terms": {"reverse": rev, "entropy": rng.normal(ent, 0.05, n)},
                "selection_scores": {}} for m, (rev, ent) in spec.items()]
    rows = [{"method": m, "target_accuracy_mean": 0.5} for m in spec]
    board = Leaderboard("classification", rows, results, {}, n_eval=n, seeds=[0],
                        selection=["reverse", "entropy"],
                        criteria={"reverse": True, "entropy": False})
    choice = choose(board)
    assert list(choice.excluded) == ["Confident"] and choice.method == "Good"
    assert choice.criterion == "entropy" and "Reverse validation" in choice.reasons[0]
    assert choose(board, guard_se=np.inf).method == "Confident"  # the guard decides it
    with pytest.raises(tk.errors.ParameterError, match="guard_se"):
        choose(board, guard_se=np.nan)


def _reverse_entropy_board(spec: dict[str, tuple[np.ndarray | None, float]], n: int, rng,
                           criteria=("reverse", "entropy")):
    """A leaderboard whose candidates have the given reverse-validation terms (None: not
    scored) and target entropies around the given level."""
    from transferkit.selection import Leaderboard

    def terms(rev, ent):
        out = {"entropy": rng.normal(ent, 0.05, n)}
        if "reverse" in criteria and rev is not None:
            out["reverse"] = rev
        return out

    results = [{"method": m, "seed": 0, "score": 0.5, "error": None,
                "eval_terms": np.full(n, 0.5), "selection_terms": terms(rev, ent),
                "selection_scores": {}} for m, (rev, ent) in spec.items()]
    rows = [{"method": m, "target_accuracy_mean": 0.5} for m in spec]
    return Leaderboard("classification", rows, results, {}, n_eval=n, seeds=[0],
                       selection=list(criteria),
                       criteria={c: c == "reverse" for c in criteria})


def _moved(base: np.ndarray, up: int, down: int = 0) -> np.ndarray:
    """``base`` with ``up`` wrong rows made right and ``down`` right rows made wrong: a
    paired advantage of (up − down) / n at about sqrt(up + down) / n standard error."""
    out = base.copy()
    out[np.flatnonzero(base == 0)[:up]] = 1.0
    out[np.flatnonzero(base == 1)[:down]] = 0.0
    return out


def test_cautious_rule_switches_only_on_reverse_evidence_too():
    """"Same" is more confident than source-only but no better on reverse validation:
    the default rule takes it, the cautious one does not. A candidate must lead on
    reverse validation by more than one paired standard error: 2 rows up and 1 down in
    400 (z ≈ 0.6) is not enough, 4 up (z ≈ 2) is; one without a reverse score has no
    evidence."""
    from transferkit.selection import CAUTIOUS_GUARD_SE

    rng = np.random.default_rng(1)
    n = 400
    so_rev = (rng.random(n) < 0.8).astype(float)
    spec = {"SourceOnly": (so_rev, 0.60), "Same": (so_rev, 0.20)}
    board = _reverse_entropy_board(spec, n, rng)
    assert choose(board).method == "Same" and choose(board).rule == "default"
    cautious = choose(board, guard_se=CAUTIOUS_GUARD_SE)
    assert cautious.method == "SourceOnly" and list(cautious.excluded) == ["Same"]
    assert cautious.rule == "cautious" and "cautious rule" in cautious.reasons[0]

    spec.update({"Barely": (_moved(so_rev, 2, 1), 0.25), "Clearly": (_moved(so_rev, 4), 0.30),
                 "Unscored": (None, 0.10)})
    board = _reverse_entropy_board(spec, n, rng)
    cautious = choose(board, guard_se=CAUTIOUS_GUARD_SE)
    assert set(cautious.excluded) == {"Same", "Barely", "Unscored"}
    assert cautious.method == "Clearly"
    assert choose(board).method == "Unscored"  # the default guard has nothing against it
    assert choose(board, guard_se=-2.5).method == "SourceOnly"  # 4 rows: z = 2 < 2.5
    assert choose(board, guard_se=-np.inf).method == "SourceOnly"

    # Without target labels the verdict cannot measure the switch: it points a default
    # choice to the cautious rule, and does not repeat that to a cautious one.
    board.n_eval = 0
    hint = "run --cautious"
    default = judge(board, choose(board))
    assert not default.verified and any(hint in r for r in default.reasons)
    cautious = judge(board, choose(board, guard_se=CAUTIOUS_GUARD_SE))
    assert cautious.use == "Clearly" and not any(hint in r for r in cautious.reasons)


def test_cautious_rule_keeps_the_reference_when_reverse_validation_is_missing():
    rng = np.random.default_rng(2)
    n = 200
    spec = {"SourceOnly": (None, 0.60), "Confident": (None, 0.10)}
    board = _reverse_entropy_board(spec, n, rng, criteria=("entropy",))
    assert choose(board).method == "Confident"  # no guard without reverse validation
    cautious = choose(board, guard_se=-1.0)
    assert cautious.method == "SourceOnly" and "not available" in cautious.reasons[0]


def test_choose_without_a_working_reference_says_so():
    """Source-only failed on every seed: neither rule may return it, and the default one
    used to fail on the missing comparison."""
    rng = np.random.default_rng(3)
    n = 200
    so_rev = (rng.random(n) < 0.8).astype(float)
    board = _reverse_entropy_board({"SourceOnly": (so_rev, 0.6), "A": (so_rev, 0.3),
                                    "B": (so_rev, 0.5)}, n, rng)
    for r in board.results:
        if r["method"] == "SourceOnly":
            r["error"] = "boom"
    for guard in (1.0, -1.0):
        choice = choose(board, guard_se=guard)
        assert choice.method == "A"
        assert "no working reference" in choice.reasons[0]
        verdict = judge(board, choice)  # and the verdict does not advise the failed one
        assert verdict.use == "A" and not verdict.verified and "No baseline" in verdict.headline
    assert "cautious rule cannot apply" in choose(board, guard_se=-1.0).reasons[0]


def test_a_choice_by_target_labels_is_not_called_label_free():
    """All labelled target rows went to training (none held out): the verdict cannot
    measure the choice, but must say the labels made it, without the cautious hint."""
    from transferkit.selection import Choice

    rng = np.random.default_rng(4)
    n = 100
    board = _reverse_entropy_board({"SourceOnly": (None, 0.6), "A": (None, 0.3)}, n, rng,
                                   criteria=("entropy",))
    board.n_eval = 0
    verdict = judge(board, Choice("A", "target_cv", ["A has the best CV accuracy."],
                                  rule="target_cv"))
    assert verdict.use == "A" and "cross-validation on the target labels" in verdict.headline
    assert not any("--cautious" in r for r in verdict.reasons)


# --------------------------------------------------------------------------- the three cases
def test_verdict_no_shift_says_source_only_is_enough(tmp_path):
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(n_samples=200, rotation=0,
                                                      random_state=1)
    src, tgt = _frames(Xs, ys, Xt, yt)
    res = execute(tmp_path / "out", src, tgt, "y", methods=["KMM", "CORAL", "SA"], seeds=3,
                  estimator="linear", progress=False, n_jobs=1)
    v = res.summary["verdict"]
    assert res.summary["diagnostics"]["shift_detected"] is False
    assert v["decision"] == "no_shift" and v["use"] == "SourceOnly" and v["verified"]
    assert "No shift" in v["headline"]


def test_verdict_shift_that_adaptation_fixes_says_transfer_helps(tmp_path):
    res = execute(tmp_path / "out", methods=["DANN"], seeds=3, progress=False)
    v = res.summary["verdict"]
    assert res.summary["selected_method"] == "DANN"
    assert v["decision"] == "transfer_helps" and v["use"] == "DANN" and v["verified"]
    gain = v["evidence"]["selected_minus_reference"]
    assert gain["low"] > 0 and gain["mean"] > 0.1
    assert res.summary["delivered_method"] == "DANN"


@pytest.mark.parametrize("fraction", [0.0, 0.3])
def test_verdict_contradicting_labels_says_transfer_hurts(tmp_path, fraction):
    """Same inputs, opposite labelling rule on the target: nothing trained on the source
    helps. With target labels for training the advice is TargetOnly, which ran."""
    Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift(n_samples=200, rotation=0,
                                                      random_state=2)
    src, tgt = _frames(Xs, ys, Xt, 1 - yt)
    res = execute(tmp_path / "out", src, tgt, "y", methods=["KMM", "CORAL"], seeds=2,
                  estimator="linear", target_train_fraction=fraction, progress=False,
                  n_jobs=1)
    v = res.summary["verdict"]
    assert v["decision"] == "transfer_hurts" and v["use"] == "TargetOnly", v
    assert "Transfer hurts" in v["headline"]
    if fraction:
        assert "TargetOnly" in res.summary["methods"]
        assert res.summary["delivered_method"] == "TargetOnly"
    else:
        assert "chance" in v["reasons"][0]


# --------------------------------------------------------------------------- without labels
def test_unlabelled_target_gives_an_unverified_verdict(tmp_path):
    Xs, ys, Xt, _ = tk.datasets.make_two_moons_shift(n_samples=150, rotation=50,
                                                     random_state=0)
    src, tgt = _frames(Xs, ys, Xt, np.full(len(Xt), np.nan))
    res = execute(tmp_path / "out", src, tgt, "y", methods=["KMM"], seeds=2,
                  estimator="linear", progress=False, n_jobs=1)
    v = res.summary["verdict"]
    assert not v["verified"] and "label" in v["reasons"][-1]
    assert res.summary["diagnostics"]["shift_detected"] is True
    assert v["decision"] in ("transfer_helps", "no_gain")


def test_judge_measures_the_chosen_method_against_source_only():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(300, 300, shift=1.5, random_state=0)
    board = compare(["SourceOnly", "CORAL"], Xs, ys, Xt, y_eval=yt, seeds=2, progress=False,
                    n_jobs=1, selection=["reverse", "entropy"])
    d = paired_difference(board, "CORAL", "SourceOnly")
    acc = board["CORAL"]["target_accuracy_mean"] - board["SourceOnly"]["target_accuracy_mean"]
    assert d["mean"] == pytest.approx(acc) and d["low"] < d["mean"] < d["high"]
    choice = choose(board)
    assert choice.method == "SourceOnly"  # CORAL is no more confident on the target
    v = judge(board, choice, {"shift_detected": True, "summary": "Shifted. More."},
              chance=0.5)
    assert v.selected == "SourceOnly" and v.use == "SourceOnly"
    assert v.decision == "no_gain" and "Shifted." in v.reasons[0]


def test_judge_takes_the_shift_report_as_diagnose_returns_it():
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(100, 100, random_state=0)
    board = compare(["SourceOnly", "KMM"], Xs, ys, Xt, y_eval=yt, seeds=2, n_jobs=1,
                    progress=False, selection=["entropy"])
    report = tk.diagnose(Xs, Xt, ys)
    as_object = judge(board, choose(board), report)
    assert as_object.to_dict() == judge(board, choose(board), report.to_dict()).to_dict()
    assert "shift_detected" in as_object.evidence


def test_choose_leaves_out_a_collapsed_candidate_whose_entropy_is_zero():
    """A classifier that puts every target row in one class has entropy 0 and would win
    the entropy ranking; the rule leaves it out while source-only separates classes."""
    from sklearn.dummy import DummyClassifier

    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(120, 120, random_state=0)
    board = compare(["SourceOnly", "KMM"], Xs, ys, Xt, y_eval=yt, seeds=2, n_jobs=1,
                    progress=False, selection=["entropy"],
                    method_params={"KMM": {"estimator": DummyClassifier(
                        strategy="most_frequent")}})
    assert np.mean(board.terms("KMM", "entropy")) == 0.0
    choice = choose(board)
    assert choice.method == "SourceOnly" and "KMM" in choice.excluded
    assert any("collapse" in r for r in choice.reasons)
