"""``diagnose``: every shift diagnostic in one call, gathered in a :class:`ShiftReport`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import _missing_mask, _to_numpy, check_pair, check_y, infer_task
from ..errors import InputError
from .divergence import coral_distance, proxy_a_distance, sliced_wasserstein
from .drift import drift_ranking
from .label_shift import ben_david_bound, estimate_label_shift
from .mmd import mmd_test

__all__ = ["ShiftReport", "diagnose"]


@dataclass
class ShiftReport:
    """Result of :func:`diagnose`; ``to_dict()`` is JSON-serialisable, ``str()`` readable.

    Attributes
    ----------
    n_source, n_target, n_features : int
    drift : list of dict
        Per-feature tests, most shifted first (:func:`drift_ranking`).
    mmd : dict
        ``statistic``, ``p_value``, ``n_permutations``, ``estimator`` (:func:`mmd_test`).
    proxy_a_distance, sliced_wasserstein, coral_distance : float
    label_shift : dict or None
        BBSE estimate (:func:`estimate_label_shift`), when source class labels are given.
    bound : dict or None
        Measured terms of the Ben-David bound (:func:`ben_david_bound`), same condition.
    alpha : float
        Significance level used in the summary.
    """

    n_source: int
    n_target: int
    n_features: int
    drift: list
    mmd: dict
    proxy_a_distance: float
    sliced_wasserstein: float
    coral_distance: float
    label_shift: dict | None = None
    bound: dict | None = None
    alpha: float = 0.05
    notes: list = field(default_factory=list)

    @property
    def shift_detected(self) -> bool:
        """True when the MMD test or a Bonferroni-corrected drift test rejects at ``alpha``."""
        drift_hit = any(r["p_value_bonferroni"] < self.alpha for r in self.drift)
        return bool(self.mmd["p_value"] < self.alpha or drift_hit)

    @property
    def summary(self) -> str:
        """One paragraph in plain words."""
        shifted = [r for r in self.drift if r["p_value_bonferroni"] < self.alpha]
        mmd = self.mmd
        parts = []
        if self.shift_detected:
            parts.append(f"Source ({self.n_source} rows) and target ({self.n_target} rows) "
                         "differ significantly")
        else:
            parts.append(f"No significant shift between source ({self.n_source} rows) and "
                         f"target ({self.n_target} rows) at the {self.alpha:.0%} level")
        parts[0] += (f": MMD p-value {mmd['p_value']:.3g} ({mmd['n_permutations']} "
                     f"permutations, {mmd['estimator']} estimator)")
        if shifted:
            names = ", ".join(repr(r["feature"]) for r in shifted[:5])
            more = f" and {len(shifted) - 5} more" if len(shifted) > 5 else ""
            parts[0] += (f"; {len(shifted)} of {self.n_features} features drift after "
                         f"Bonferroni correction, most of all {names}{more}")
        parts[0] += "."
        pad = self.proxy_a_distance
        level = ("hardly" if pad < 0.2 else "partly" if pad < 1.0 else "largely"
                 if pad < 1.8 else "almost perfectly")
        parts.append(f"A domain classifier can {level} tell the domains apart "
                     f"(proxy A-distance {pad:.2f} on a 0-2 scale).")
        if self.label_shift is not None:
            ls = self.label_shift
            tv = 0.5 * float(np.abs(np.subtract(ls["target_priors"], ls["source_priors"])).sum())
            parts.append("Black-box shift estimation puts the target class priors at "
                         + ", ".join(f"{c}: {q:.2f}" for c, q in
                                     zip(ls["classes"], ls["target_priors"]))
                         + f" (total variation {tv:.2f} from the source priors; it assumes "
                         "only the class mix changed, so a change of the inputs within a "
                         "class misleads it).")
            if ls.get("observed_target_priors") is not None:
                parts.append(f"The {ls['n_labelled_target']} labelled target rows have "
                             + ", ".join(f"{c}: {q:.2f}" for c, q in
                                         zip(ls["classes"], ls["observed_target_priors"]))
                             + ".")
        if self.bound is not None:
            b = self.bound
            parts.append(f"Ben-David bound: source error {b['source_error']:.3f} + "
                         f"½ d_H {b['half_d_H']:.3f} = {b['bound_without_lambda']:.3f} + λ "
                         "(λ, the best joint error, is unknown without target labels).")
        return " ".join(parts)

    def to_dict(self) -> dict:
        """All results as plain Python (JSON-serialisable), with the ``summary``."""
        return {
            "n_source": self.n_source, "n_target": self.n_target,
            "n_features": self.n_features, "alpha": self.alpha,
            "shift_detected": self.shift_detected,
            "drift": [dict(r) for r in self.drift], "mmd": dict(self.mmd),
            "proxy_a_distance": self.proxy_a_distance,
            "sliced_wasserstein": self.sliced_wasserstein,
            "coral_distance": self.coral_distance,
            "label_shift": self.label_shift, "bound": self.bound,
            "notes": list(self.notes), "summary": self.summary,
        }

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``."""
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        m = self.mmd
        lines = [
            "Shift report",
            "=" * 60,
            f"source rows {self.n_source}, target rows {self.n_target}, "
            f"features {self.n_features}",
            "",
            f"MMD² ({m['estimator']})      {m['statistic']:.4g}   p = {m['p_value']:.4g} "
            f"({m['n_permutations']} permutations)",
            f"proxy A-distance     {self.proxy_a_distance:.3f}   (0 = same, 2 = disjoint)",
            f"sliced Wasserstein   {self.sliced_wasserstein:.4g}",
            f"CORAL distance       {self.coral_distance:.4g}",
            "",
            "Most shifted features",
            f"  {'feature':<20} {'test':<5} {'statistic':>10} {'p-value':>10} {'effect':>7}",
        ]
        for r in self.drift[:10]:
            lines.append(f"  {str(r['feature'])[:20]:<20} {r['test']:<5} "
                         f"{r['statistic']:>10.4g} {r['p_value']:>10.3g} "
                         f"{r['effect_size']:>7.3f}")
        if len(self.drift) > 10:
            lines.append(f"  ... {len(self.drift) - 10} more")
        if self.label_shift is not None:
            ls = self.label_shift
            lines += ["", "Label shift (BBSE)",
                      f"  {'class':<12} {'source':>8} {'target':>8} {'weight':>8}"]
            for c, p, q, w in zip(ls["classes"], ls["source_priors"], ls["target_priors"],
                                  ls["weights"]):
                lines.append(f"  {str(c)[:12]:<12} {p:>8.3f} {q:>8.3f} {w:>8.3f}")
        if self.bound is not None:
            b = self.bound
            lines += ["", f"Ben-David bound: ε_S {b['source_error']:.3f} + ½ d_H "
                      f"{b['half_d_H']:.3f} = {b['bound_without_lambda']:.3f} + λ (unknown)"]
        for note in self.notes:
            lines.append(f"note: {note}")
        lines += ["", self.summary]
        return "\n".join(lines)


def _numeric_pair(Xs: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Float matrices for the multivariate diagnostics; DataFrames get one-hot categoricals."""
    if hasattr(Xs, "columns") and hasattr(Xt, "columns"):
        import pandas as pd

        both = pd.concat([Xs, Xt], axis=0, ignore_index=True)
        non_num = [c for c in both.columns if not pd.api.types.is_numeric_dtype(both[c])
                   or pd.api.types.is_bool_dtype(both[c])]
        if non_num:
            both = pd.get_dummies(both, columns=non_num, dtype=float)
        arr = both.to_numpy(dtype=np.float64)
        return check_pair(arr[: len(Xs)], arr[len(Xs):])
    return check_pair(Xs, Xt)


def diagnose(Xs: Any, Xt: Any, ys: Any = None, yt: Any = None, *, n_permutations: int = 200,
             alpha: float = 0.05, estimator: Any = None, random_state: int | None = 0
             ) -> ShiftReport:
    """Diagnose the shift between a source and a target sample ("when to transfer").

    Runs the per-feature drift ranking (KS / chi-square), the MMD permutation test
    (Gretton et al. 2012), the proxy A-distance (Ben-David et al. 2010), the sliced
    Wasserstein and CORAL distances and, with source class labels, black-box label-shift
    estimation (Lipton et al. 2018) and the measurable terms of the Ben-David bound. The
    choice of tests follows Rabanser et al. (2019, "Failing loudly").

    Parameters
    ----------
    Xs, Xt : array-like or DataFrame of shape (n_source, d) and (n_target, d)
        DataFrames may hold categorical columns: they are tested with chi-square and
        one-hot encoded for the multivariate diagnostics.
    ys : array-like of shape (n_source,), optional
        Source labels. Class labels add ``label_shift`` and ``bound``; real-valued
        (regression) labels add nothing yet (a note says so).
    yt : array-like of shape (n_target,), optional
        Target labels (NaN/None = unlabelled). When given for a classification task, the
        observed target priors of the labelled rows are added to ``label_shift`` as
        ``observed_target_priors`` to check the estimate.
    n_permutations : int, default=200
        Permutations of the MMD test.
    alpha : float, default=0.05
        Significance level for the summary's verdict.
    estimator : scikit-learn classifier, optional
        Task classifier for label shift and the bound (default: logistic regression).
    random_state : int or None, default=0

    Returns
    -------
    ShiftReport

    References
    ----------
    Ben-David et al., "A theory of learning from different domains", Machine Learning 79
    (2010). Gretton et al., "A kernel two-sample test", JMLR 13 (2012). Lipton, Wang and
    Smola, "Detecting and correcting for label shift with black box predictors", ICML
    2018. Rabanser, Günnemann and Lipton, "Failing loudly", NeurIPS 2019.
    """
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1); got {alpha!r}.")
    drift = drift_ranking(Xs, Xt)
    A, B = _numeric_pair(Xs, Xt)
    if len(A) < 5 or len(B) < 5:
        raise InputError(f"diagnose needs at least 5 samples per domain (5-fold domain "
                         f"classifier); got {len(A)} source and {len(B)} target.")
    mmd = mmd_test(A, B, n_permutations=n_permutations, random_state=random_state)
    mmd_d = {k: mmd.to_dict()[k] for k in ("statistic", "p_value", "n_permutations",
                                            "estimator", "sigma", "block_size")}
    report = ShiftReport(
        n_source=len(A), n_target=len(B), n_features=len(drift), drift=drift, mmd=mmd_d,
        proxy_a_distance=proxy_a_distance(A, B, random_state=random_state),
        sliced_wasserstein=sliced_wasserstein(A, B, random_state=random_state),
        coral_distance=coral_distance(A, B), alpha=alpha)
    if ys is not None:
        y = check_y(ys, len(A), "ys (source labels)")
        if infer_task(y, estimator) == "classification":
            report.label_shift = estimate_label_shift(A, y, B, estimator,
                                                      random_state=random_state)
            report.bound = ben_david_bound(A, y, B, estimator, random_state=random_state)
            if yt is not None:
                yt_arr = check_y(yt, len(B), "yt (target labels)", allow_missing=True)
                lab = yt_arr[~_missing_mask(yt_arr)]
                if len(lab):
                    classes = report.label_shift["classes"]
                    obs = [float(np.mean(_to_numpy(lab) == c)) for c in classes]
                    report.label_shift["observed_target_priors"] = obs
                    report.label_shift["n_labelled_target"] = int(len(lab))
        else:
            report.notes.append("ys looks real-valued (regression): label-shift estimation "
                                "and the Ben-David bound need class labels and were skipped.")
    return report
