"""Plots and the HTML report of a comparison (matplotlib, rendered with Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..selection.compare import Leaderboard
from .figures import (
    boundary_figure,
    choose_weighting_method,
    domains_figure,
    drift_figure,
    leaderboard_figure,
    standard_figures,
    weights_figure,
)
from .html import render_index, write_index

__all__ = ["write_report", "standard_figures", "leaderboard_figure", "domains_figure",
           "drift_figure",
           "boundary_figure", "weights_figure", "choose_weighting_method", "render_index",
           "write_index"]


def write_report(out_dir: str | os.PathLike, board: Leaderboard, Xs: Any, ys: Any, Xt: Any,
                 y_eval: Any, summary: Mapping[str, Any], *, weighting: str | None = None,
                 title: str = "transferkit report") -> list[str]:
    """Write the standard PNGs and ``index.html`` into ``out_dir``; return the file names.

    Parameters
    ----------
    out_dir : path
        An existing folder.
    board : Leaderboard
        The comparison (its ``models`` are drawn).
    Xs, ys, Xt, y_eval : array-like
        The data compared on; ``y_eval`` colours the target points where known.
    summary : dict
        What ``summary.json`` holds (leaderboard, verdict, data description).
    weighting : str, optional
        Weighting method to picture; default KLIEP when fitted, else the best one.
    """
    shift = summary.get("diagnostics") or {}
    figures = standard_figures(board, Xs, ys, Xt, y_eval, out_dir, weighting=weighting,
                               selected=summary.get("selected_method"),
                               drift=shift.get("drift"))
    write_index(Path(out_dir) / "index.html", summary, figures, title=title)
    return [f for f, _ in figures] + ["index.html"]
