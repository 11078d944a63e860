"""The report's standard pictures, each a PNG built from a leaderboard and the data.

For 2-D data they are the seed tutorial's: the two domains, the decision boundary
without and with importance weighting, the source points sized by their estimated
density ratio, and for domain-adversarial training (DANN) the decision boundary of
source-only training next to DANN's and the learning curve of its task and domain
losses. Higher-dimensional data are shown in a 2-D PCA projection (no boundary).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..selection.compare import Leaderboard
from .plots import (
    draw_decision_boundary,
    draw_domains,
    draw_learning_curve,
    draw_scores,
    draw_weights,
    new_figure,
    project_2d,
    save_figure,
)

__all__ = ["leaderboard_figure", "domains_figure", "drift_figure", "boundary_figure",
           "weights_figure",
           "learning_curve_figure", "choose_weighting_method", "choose_adversarial_method",
           "standard_figures"]

REFERENCE = "SourceOnly"


def _score_text(board: Leaderboard, name: str) -> str:
    score = board.model_score(name)
    if score is None:
        return "no target score"
    label = "target accuracy" if board.task == "classification" else "target R²"
    seed = f" (seed {board.seeds[0]})" if len(board.seeds) > 1 else ""
    return f"{label} {score:.2f}{seed}"


def leaderboard_figure(board: Leaderboard, path: str | os.PathLike) -> str | None:
    """Bar chart of mean ± std target score per method; None when nothing was scored."""
    rows = [r for r in board.rows if r[board.score_key] is not None]
    if not rows:
        return None
    names = [r["method"] for r in rows]
    means = np.array([r[board.score_key] for r in rows])
    stds = np.array([r[board.std_key] or 0.0 for r in rows])
    lower = None
    if board.task == "classification":
        # Zoom in (differences of a few points matter) and say where the axis starts.
        lower = max(0.0, np.floor((np.min(means - stds) - 0.05) * 20) / 20)
    metric = "target accuracy" if board.task == "classification" else "target R²"
    xlabel = f"{metric}, mean ± std over {len(board.seeds)} seeds"
    if lower:
        xlabel += f" (axis starts at {lower:.2f})"
    fig, (ax,) = new_figure(width=7.0, height=0.55 * len(rows) + 1.4)
    draw_scores(ax, names, means, stds, reference=REFERENCE, xlabel=xlabel, lower=lower)
    ax.set_title(f"methods on the target domain ({board.n_eval} labelled samples)")
    return save_figure(fig, path)


def domains_figure(Xs: np.ndarray, ys: Any, Xt: np.ndarray, y_eval: Any, task: str,
                   path: str | os.PathLike) -> str:
    """(a) Source and target points; PCA of the pooled data when d > 2."""
    Zs, Zt, explained = project_2d(Xs, Xt)
    fig, (ax,) = new_figure(width=6.0, height=5.0)
    title = "source (dots) and target (crosses)"
    if Xs.shape[1] > 2:
        title += f": PCA of {Xs.shape[1]} features"
    draw_domains(ax, Zs, ys, Zt, y_eval, task=task, explained=explained, title=title)
    return save_figure(fig, path)


def drift_figure(drift: list[dict[str, Any]], path: str | os.PathLike, *, top: int = 15,
                 alpha: float = 0.05) -> str | None:
    """Per-feature drift: effect size of the most shifted features, bars in colour where
    the Bonferroni-corrected p-value is below ``alpha``; None without features."""
    rows = [r for r in drift[:top] if r.get("effect_size") is not None]
    if not rows:
        return None
    rows = rows[::-1]  # most shifted on top
    fig, (ax,) = new_figure(width=7.0, height=0.32 * len(rows) + 1.4)
    hit = [r["p_value_bonferroni"] < alpha for r in rows]
    ax.barh(np.arange(len(rows)), [r["effect_size"] for r in rows], height=0.6,
            color=["#e53935" if h else "#9e9e9e" for h in hit])
    ax.set_yticks(np.arange(len(rows)), [str(r["feature"])[:28] for r in rows], fontsize=8)
    for i, r in enumerate(rows):
        ax.text(r["effect_size"], i, f" p={r['p_value']:.2g}", va="center", fontsize=7)
    ax.set_xlabel("effect size (KS statistic / Cramér's V, 0-1)")
    ax.set_title(f"most shifted features (red: significant at {alpha:.0%} after Bonferroni)")
    ax.set_xlim(0, max(r["effect_size"] for r in rows) * 1.3 + 1e-9)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def choose_weighting_method(board: Leaderboard, prefer: str = "KLIEP") -> str | None:
    """The weighting method to picture: ``prefer`` when it was fitted, else the
    best-scoring fitted model that has importance weights (``weights_``)."""
    weighted = [name for name in board.methods
                if hasattr(board.models.get(name), "weights_")]
    if prefer in weighted:
        return prefer
    return weighted[0] if weighted else None  # board.methods is best first


def boundary_figure(board: Leaderboard, compared: str | None, Xs: np.ndarray, ys: Any,
                    Xt: np.ndarray, y_eval: Any, path: str | os.PathLike, *,
                    reference: str = REFERENCE, reference_label: str = "no weighting",
                    compared_label: str = "with weighting") -> str | None:
    """(b) Decision boundary of ``reference`` next to ``compared`` (2-D classification).

    Reusable for any pair of fitted models on the board (e.g. source-only vs DANN).
    """
    if Xs.shape[1] != 2 or board.task != "classification":
        return None
    panels = [(n, lab) for n, lab in ((reference, reference_label), (compared, compared_label))
              if n in board.models and (n != reference or lab == reference_label)]
    if not panels:
        return None
    fig, axes = new_figure(len(panels), width=5.2, height=4.6)
    for ax, (name, label) in zip(axes, panels):
        draw_decision_boundary(ax, board.models[name], Xs, ys, Xt, y_eval,
                               title=f"{name} ({label})\n{_score_text(board, name)}")
    return save_figure(fig, path)


def weights_figure(board: Leaderboard, method: str, Xs: np.ndarray, ys: Any, Xt: np.ndarray,
                   path: str | os.PathLike) -> str | None:
    """(c) Source points sized by ``method``'s density ratio, with the target points."""
    model = board.models.get(method)
    weights = getattr(model, "weights_", None)
    if weights is None or len(weights) != Xs.shape[0]:
        return None
    Zs, Zt, explained = project_2d(Xs, Xt)
    fig, (ax,) = new_figure(width=6.0, height=5.0)
    title = f"{method}: source points sized by estimated density ratio (min-max scaled)"
    draw_weights(ax, Zs, weights, Zt, ys if board.task == "classification" else None,
                 explained=explained, title=title)
    ax.title.set_fontsize(10)
    return save_figure(fig, path)


def choose_adversarial_method(board: Leaderboard, prefer: str = "DANN") -> str | None:
    """The domain-adversarial method to picture: ``prefer`` when fitted, else the
    best-scoring fitted model whose training history has a ``domain`` loss."""
    adversarial = [name for name in board.methods
                   if "domain" in (getattr(board.models.get(name), "history_", None) or {})]
    if prefer in adversarial:
        return prefer
    return adversarial[0] if adversarial else None


def learning_curve_figure(board: Leaderboard, method: str, path: str | os.PathLike
                          ) -> str | None:
    """The loss terms of ``method`` per epoch (the seed's DANN learning curve)."""
    history = getattr(board.models.get(method), "history_", None)
    if not history:
        return None
    terms = {k: v for k, v in history.items() if k != "loss"} or dict(history)
    fig, (ax,) = new_figure(width=6.4, height=4.2)
    draw_learning_curve(ax, terms, title=f"{method}: training losses per epoch")
    if "domain" in terms:
        # Sum of the two per-domain cross-entropies of a discriminator that cannot tell
        # the domains apart: the level an aligned representation drives the term to.
        ax.axhline(2 * np.log(2), color="grey", ls=":", lw=1)
        ax.annotate("2·log 2: domains indistinguishable", (1, 2 * np.log(2)),
                    fontsize=8, color="grey", va="bottom")
    ax.set_ylabel("loss")
    return save_figure(fig, path)


def standard_figures(board: Leaderboard, Xs: np.ndarray, ys: Any, Xt: np.ndarray,
                     y_eval: Any, out_dir: str | os.PathLike, *, weighting: str | None = None,
                     selected: str | None = None, drift: list[dict[str, Any]] | None = None
                     ) -> list[tuple[str, str]]:
    """Write every picture that applies into ``out_dir``; return [(file, caption), ...].

    ``weighting`` names the weighting method to picture (default: KLIEP when fitted,
    else the best weighting method); ``selected`` the chosen method, whose decision
    boundary is drawn next to source-only's; ``drift`` the drift ranking to chart.
    """
    out = Path(out_dir)
    Xs, Xt = np.asarray(Xs, float), np.asarray(Xt, float)
    figures: list[tuple[str, str]] = []
    metric = "accuracy" if board.task == "classification" else "R²"
    if leaderboard_figure(board, out / "leaderboard.png"):
        figures.append(("leaderboard.png", f"Target {metric} per method (mean ± std over "
                        f"seeds); grey: {REFERENCE}, the reference to beat."))
    proj = " (2-D PCA projection of source+target)" if Xs.shape[1] > 2 else ""
    domains_figure(Xs, ys, Xt, y_eval, board.task, out / "domains.png")
    figures.append(("domains.png", f"Source and target samples{proj}: where the crosses "
                    "leave the dots, the target lies outside what the source covers."))
    if drift and drift_figure(drift, out / "drift.png"):
        figures.append(("drift.png", "Per-feature drift between source and target, most "
                        "shifted first (two-sample test per column)."))
    if selected and selected != REFERENCE and selected in board.models and boundary_figure(
            board, selected, Xs, ys, Xt, y_eval, out / "selected_boundary.png",
            reference_label="source only", compared_label="selected"):
        figures.append(("selected_boundary.png",
                        f"Decision boundary of {REFERENCE} and of the selected method, "
                        f"{selected}; crosses are target samples, coloured by their true "
                        "label where known."))
    weighting = weighting or choose_weighting_method(board)
    compared = weighting or next((m for m in board.methods if m != REFERENCE
                                  and board.model_score(m) is not None), None)
    if boundary_figure(board, compared, Xs, ys, Xt, y_eval, out / "decision_boundary.png",
                       compared_label="with weighting" if weighting else "adapted"):
        versus = f" and with {compared}" if compared else ""
        figures.append(("decision_boundary.png",
                        f"Decision boundary without weighting ({REFERENCE}){versus}; crosses "
                        "are target samples, coloured by their true label where known."))
    if weighting and weights_figure(board, weighting, Xs, ys, Xt, out / "weights.png"):
        figures.append(("weights.png",
                        f"Importance weights of {weighting}: larger source points count more "
                        f"in training{proj}."))
    adversarial = choose_adversarial_method(board)
    if adversarial and boundary_figure(board, adversarial, Xs, ys, Xt, y_eval,
                                       out / "adversarial_boundary.png",
                                       reference_label="source only",
                                       compared_label="domain-adversarial"):
        figures.append(("adversarial_boundary.png",
                        f"Decision boundary of source-only training ({REFERENCE}) and of "
                        f"{adversarial}, whose encoder is trained to make the domains "
                        "indistinguishable; crosses are target samples."))
    if adversarial and learning_curve_figure(board, adversarial,
                                             out / "adversarial_learning_curve.png"):
        figures.append(("adversarial_learning_curve.png",
                        f"{adversarial}'s learning curve: the task loss on the labelled "
                        "source falls while the domain loss rises toward 2·log 2, where "
                        "the discriminator can no longer tell source from target."))
    return figures
