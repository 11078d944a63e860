"""Small, reusable matplotlib plots of a transfer problem and its results.

Each ``draw_*`` function draws on an ``Axes`` it is given and returns it, so pictures
can be combined freely; :func:`new_figure` / :func:`save_figure` make and write figures
without pyplot (no global backend is switched, which keeps notebooks and worker threads
safe; files are rendered with Agg).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure", "class_colors", "project_2d", "draw_domains",
           "draw_decision_boundary", "draw_weights", "draw_scores", "draw_learning_curve"]

# Seed tutorial colours: label 0 red, label 1 blue; further classes from tab10.
_PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]
_TARGET_GREY = "#555555"


def new_figure(ncols: int = 1, *, width: float = 5.0, height: float = 4.2,
               nrows: int = 1) -> tuple[Figure, np.ndarray]:
    """A figure with ``nrows`` x ``ncols`` axes (returned as a flat array)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Write ``fig`` as PNG to ``path`` and return the path."""
    fig.savefig(path, dpi=dpi, format="png")
    return str(path)


def class_colors(classes: Sequence[Any]) -> dict[Any, str]:
    """A fixed colour per class, in sorted order (first red, second blue)."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(classes)}


def _known(y: Any, n: int) -> np.ndarray:
    """Mask of entries with a label (NaN / None mean unknown)."""
    if y is None:
        return np.zeros(n, dtype=bool)
    y = np.asarray(y)
    if y.dtype.kind == "f":
        return ~np.isnan(y)
    if y.dtype.kind == "O":
        return np.array([not (v is None or (isinstance(v, float) and np.isnan(v))) for v in y])
    return np.ones(n, dtype=bool)


def project_2d(Xs: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both domains in the first two principal axes of the pooled data.

    Returns ``Zs, Zt, explained`` where ``explained`` holds the variance ratio of each
    axis. Two-dimensional data are returned unchanged (explained = [1, 0] is not
    meaningful there, so it is ``[nan, nan]``); one feature gets a random second
    coordinate in [-1, 1].
    """
    Xs, Xt = np.asarray(Xs, float), np.asarray(Xt, float)
    if Xs.shape[1] == 1:  # one feature: a random vertical spread shows where points pile up
        rng = np.random.default_rng(0)
        spread = [np.column_stack([X[:, 0], rng.uniform(-1, 1, len(X))]) for X in (Xs, Xt)]
        return spread[0], spread[1], np.array([np.nan, np.nan])
    if Xs.shape[1] <= 2:
        return Xs, Xt, np.array([np.nan, np.nan])
    from sklearn.decomposition import PCA

    # Fitted on source+target so that the axes show the shift between them too.
    pca = PCA(n_components=2, random_state=0).fit(np.vstack([Xs, Xt]))
    return pca.transform(Xs), pca.transform(Xt), pca.explained_variance_ratio_


def _axis_labels(ax: Any, explained: np.ndarray | None) -> None:
    if explained is None or np.isnan(explained).all():
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    else:
        ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")


def _scatter_labelled(ax: Any, X: np.ndarray, y: Any, task: str, colors: Mapping | None,
                      **kw: Any) -> Any:
    """Points coloured by class (classification) or by value (regression; returns the
    mappable for a colour bar)."""
    if task == "classification":
        y = np.asarray(y)
        for c, col in (colors or {}).items():
            mask = y == c
            if mask.any():
                ax.scatter(X[mask, 0], X[mask, 1], color=col, **kw)
        return None
    return ax.scatter(X[:, 0], X[:, 1], c=np.asarray(y, float), cmap="viridis", **kw)


def draw_domains(ax: Any, Zs: np.ndarray, ys: Any, Zt: np.ndarray, yt: Any = None, *,
                 task: str = "classification", classes: Sequence[Any] | None = None,
                 explained: np.ndarray | None = None, title: str = "source and target"
                 ) -> Any:
    """Source points (coloured by label) and target points (crosses; coloured when known)."""
    regression = task != "classification"
    classes = [] if regression else (
        list(classes) if classes is not None else sorted(set(np.asarray(ys).tolist())))
    colors = class_colors(classes)
    known = _known(yt, Zt.shape[0])
    kw: dict[str, Any] = {}
    if regression:  # one colour scale for both domains
        values = np.concatenate([np.asarray(ys, float), np.asarray(yt)[known].astype(float)])
        kw = {"vmin": float(values.min()), "vmax": float(values.max())}
    mappable = _scatter_labelled(ax, Zs, ys, task, colors, s=22, alpha=0.75,
                                 edgecolors="none", **kw)
    if (~known).any():
        ax.scatter(Zt[~known, 0], Zt[~known, 1], marker="x", s=22, color=_TARGET_GREY,
                   linewidths=1.0)
    if known.any():
        _scatter_labelled(ax, Zt[known], np.asarray(yt)[known], task, colors, marker="x", s=22,
                          linewidths=1.0, **kw)
    if regression:
        ax.figure.colorbar(mappable, ax=ax, label="label")
        handles = [ax.scatter([], [], color=_PALETTE[1], s=22, label="source (colour: label)")]
    else:
        handles = [ax.scatter([], [], color=colors[c], s=22, label=f"source, y={c}")
                   for c in classes[:6]]
    target_label = "target (colour: held-out label)" if known.any() else "target"
    handles.append(ax.scatter([], [], marker="x", color=_TARGET_GREY, label=target_label))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.8)
    _axis_labels(ax, explained)
    ax.set_title(title)
    return ax


def _grid(Z: np.ndarray, steps: int = 200, pad: float = 0.15) -> tuple[np.ndarray, ...]:
    lo, hi = Z.min(0), Z.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xs = np.linspace(lo[0] - pad * span[0], hi[0] + pad * span[0], steps)
    ys = np.linspace(lo[1] - pad * span[1], hi[1] + pad * span[1], steps)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy, np.column_stack([gx.ravel(), gy.ravel()])


def draw_decision_boundary(ax: Any, model: Any, Xs: np.ndarray, ys: Any, Xt: np.ndarray,
                           yt: Any = None, *, title: str = "", classes: Sequence[Any] | None = None
                           ) -> Any:
    """The regions a fitted 2-D classifier predicts, with source (faint) and target points.

    For two classes the shading is the predicted probability of the second class and
    the black line the 0.5 boundary; for more classes, the predicted class.
    """
    classes = list(classes) if classes is not None else list(model.classes_)
    colors = class_colors(classes)
    gx, gy, grid = _grid(np.vstack([Xs, Xt]))
    if len(classes) == 2 and hasattr(model, "predict_proba"):
        p = np.asarray(model.predict_proba(grid))[:, 1].reshape(gx.shape)
        cmap = ListedColormap(_two_tone(colors[classes[0]], colors[classes[1]]))
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.35)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.2)
    else:
        pred = np.asarray(model.predict(grid))
        idx = np.searchsorted(np.asarray(classes), pred).reshape(gx.shape)
        cmap = ListedColormap([colors[c] for c in classes])
        ax.contourf(gx, gy, idx, levels=np.arange(len(classes) + 1) - 0.5, cmap=cmap, alpha=0.3)
    _scatter_labelled(ax, Xs, ys, "classification", colors, s=12, alpha=0.25,
                      edgecolors="none")
    known = _known(yt, Xt.shape[0])
    if (~known).any():
        ax.scatter(Xt[~known, 0], Xt[~known, 1], marker="x", s=24, color=_TARGET_GREY)
    if known.any():
        _scatter_labelled(ax, Xt[known], np.asarray(yt)[known], "classification", colors,
                          marker="x", s=24, linewidths=1.2)
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    _axis_labels(ax, None)
    ax.set_title(title)
    return ax


def _two_tone(c0: str, c1: str, n: int = 10) -> list[tuple[float, ...]]:
    """A diverging ramp c0 -> white -> c1."""
    from matplotlib.colors import to_rgb

    a, b, w = np.array(to_rgb(c0)), np.array(to_rgb(c1)), np.ones(3)
    t = np.linspace(0, 1, n)
    return [tuple(a + (w - a) * 2 * x) if x < 0.5 else tuple(w + (b - w) * (2 * x - 1))
            for x in t]


def draw_weights(ax: Any, Zs: np.ndarray, weights: np.ndarray, Zt: np.ndarray, ys: Any = None,
                 *, classes: Sequence[Any] | None = None, explained: np.ndarray | None = None,
                 title: str = "estimated density ratio") -> Any:
    """Source points sized by their weight (min-max scaled, as in the seed), target too."""
    w = np.asarray(weights, float)
    span = w.max() - w.min()
    scaled = (w - w.min()) / span if span > 0 else np.full_like(w, 0.5)
    sizes = 4 + 160 * scaled
    ax.scatter(Zt[:, 0], Zt[:, 1], marker="x", s=18, color=_TARGET_GREY, alpha=0.6,
               label="target")
    if ys is not None:
        classes = list(classes) if classes is not None else sorted(set(np.asarray(ys).tolist()))
        colors = class_colors(classes)
        y = np.asarray(ys)
        for c in classes:
            m = y == c
            ax.scatter(Zs[m, 0], Zs[m, 1], s=sizes[m], color=colors[c], alpha=0.55,
                       edgecolors="white", linewidths=0.4, label=f"source, y={c}")
    else:
        ax.scatter(Zs[:, 0], Zs[:, 1], s=sizes, color=_PALETTE[1], alpha=0.55,
                   edgecolors="white", linewidths=0.4, label="source")
    leg = ax.legend(loc="best", fontsize=8, framealpha=0.8)
    handles = getattr(leg, "legend_handles", None) or getattr(leg, "legendHandles", [])
    for h in handles:  # equal legend markers, whatever the weights
        if hasattr(h, "set_sizes"):
            h.set_sizes([30])
    _axis_labels(ax, explained)
    ax.set_title(title)
    return ax


def draw_scores(ax: Any, names: Sequence[str], means: Sequence[float], stds: Sequence[float],
                *, reference: str | None = None, xlabel: str = "score",
                lower: float | None = None) -> Any:
    """Horizontal bars of mean ± std per method, best on top; ``reference`` in grey with a
    dashed line at its mean."""
    names, means, stds = list(names), np.asarray(means, float), np.asarray(stds, float)
    order = np.argsort(-means, kind="stable")
    y = np.arange(len(names))[::-1]
    colors = ["#9e9e9e" if names[i] == reference else _PALETTE[1] for i in order]
    if lower is None:
        lower = min(0.0, float(np.min(means - stds)) - 0.05)
    ax.barh(y, means[order] - lower, left=lower, xerr=stds[order], color=colors,
            error_kw={"elinewidth": 1, "capsize": 3}, height=0.6)
    for yi, i in zip(y, order):
        ax.text(means[i] + stds[i], yi, f" {means[i]:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, [names[i] for i in order])
    if reference in names:
        ax.axvline(means[names.index(reference)], color="#616161", ls="--", lw=1)
    hi = float(np.max(means + stds))
    ax.set_xlim(lower, hi + 0.12 * max(hi - lower, 1e-9))
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return ax


def draw_learning_curve(ax: Any, history: Mapping[str, Sequence[float]], *,
                        title: str = "training curve", xlabel: str = "epoch") -> Any:
    """One line per recorded quantity (e.g. ``{"loss": [...], "domain_loss": [...]}``)."""
    for name, values in history.items():
        values = np.asarray(values, float)
        if values.size:
            ax.plot(np.arange(1, values.size + 1), values, label=name, lw=1.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if history:
        ax.legend(fontsize=8)
    return ax
