"""A self-contained ``index.html``: inline CSS, relative links to PNGs, no scripts.

Everything is rendered from the run's summary dict (what ``summary.json`` holds), so the
page can be rebuilt from the JSON alone.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["render_index", "write_index"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#212121;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #e0e0e0;padding-bottom:.2rem}
.verdict{font-size:1.1rem;background:#f1f8e9;border-left:4px solid #7cb342;padding:.6rem 1rem}
.verdict.hurts{background:#fff3e0;border-color:#fb8c00}
.verdict.neutral{background:#eceff1;border-color:#78909c}
.verdict ul{margin:.4rem 0 0;font-size:.95rem}.verdict b{font-size:1.15rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #e0e0e0;padding:.3rem .8rem;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{font-weight:600;background:#e3f2fd}tr.ref td{color:#616161}
td.err{color:#c62828;max-width:28rem;font-size:.85rem}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eeeeee}
figcaption{color:#616161;font-size:.9rem}.muted{color:#757575;font-size:.85rem}
"""


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _methods_table(summary: Mapping[str, Any]) -> str:
    regression = summary.get("task") == "regression"
    mean_key, std_key = ("r2_mean", "r2_std") if regression else (
        "target_accuracy_mean", "target_accuracy_std")
    score_head = "target R² (mean ± std)" if regression else "target accuracy (mean ± std)"
    criteria = sorted({c for m in summary.get("methods", {}).values()
                       for c in (m.get("selection_scores") or {})})
    head = ["#", "method", score_head] + (["MSE"] if regression else [])
    head += [f"{c} (label-free)" for c in criteria] + ["fit time (s)", "seeds", "error"]
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    chosen = summary.get("selected_method")
    delivered = summary.get("delivered_method") or chosen
    marks = ({chosen: " ← selected"} if delivered == chosen else
             {chosen: " ← label-free choice", delivered: " ← saved (the verdict's advice)"})
    for rank, (name, m) in enumerate(summary.get("methods", {}).items(), start=1):
        score = ("–" if m.get(mean_key) is None else f"{m[mean_key]:.3f}" + (
            f" ± {(m.get(std_key) or 0.0):.3f}" if m.get("n_seeds", 0) > 1 else ""))
        cls = "best" if name == delivered else ("ref" if name == "SourceOnly" else "")
        label = escape(name) + marks.get(name, "")
        cells = [f'<td class="num">{rank}</td>', f"<td>{label}</td>",
                 f'<td class="num">{escape(score)}</td>']
        if regression:
            cells.append(f'<td class="num">{_num(m.get("mse_mean"), 4)}</td>')
        sel = m.get("selection_scores") or {}
        cells += [f'<td class="num">{_num(sel.get(c))}</td>' for c in criteria]
        cells += [f'<td class="num">{_num(m.get("fit_seconds"), 2)}</td>',
                  f'<td class="num">{m.get("n_seeds", 0)}</td>',
                  f'<td class="err">{escape(m.get("error") or "")}</td>']
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _data_table(summary: Mapping[str, Any]) -> str:
    data = {k: v for k, v in summary.get("data", {}).items()
            if v is not None and v != [] and k != "feature_names"}
    rows = [f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
            for k, v in data.items()]
    rows.insert(0, f"<tr><th>task</th><td>{escape(str(summary.get('task')))}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _figures(figures: Sequence[tuple[str, str]]) -> str:
    out = []
    for file, caption in figures:
        src = escape(Path(file).name, quote=True)  # relative: the folder can move
        out.append(f'<figure><img src="{src}" alt="{escape(caption, quote=True)}">'
                   f"<figcaption>{escape(caption)}</figcaption></figure>")
    return "".join(out)


_TONE = {"transfer_helps": "verdict", "transfer_hurts": "verdict hurts"}


def _verdict_box(summary: Mapping[str, Any]) -> str:
    verdict = summary.get("verdict")
    if not verdict:
        return ""
    if isinstance(verdict, str):  # reports written before the structured verdict
        return f'<div class="verdict">{escape(verdict)}</div>'
    tone = _TONE.get(verdict.get("decision"), "verdict neutral")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.get("reasons", []))
    basis = ("Measured on target labels that no method or criterion saw."
             if verdict.get("verified") else
             "Not measured: no held-out target labels; label some target rows to check it.")
    return (f'<div class="{tone}"><b>{escape(verdict.get("headline", ""))}</b>'
            f"<ul>{reasons}</ul><span class=\"muted\">{escape(basis)}</span></div>")


def _drift_table(shift: Mapping[str, Any], top: int = 10) -> str:
    drift = list(shift.get("drift") or [])[:top]
    if not drift:
        return ""
    head = ["feature", "test", "effect size", "p-value", "Bonferroni p"]
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in drift:
        rows.append(f"<tr><td>{escape(str(r.get('feature')))}</td>"
                    f"<td>{escape(str(r.get('test', '')))}</td>"
                    f'<td class="num">{_num(r.get("effect_size"))}</td>'
                    f'<td class="num">{r.get("p_value", float("nan")):.3g}</td>'
                    f'<td class="num">{r.get("p_value_bonferroni", float("nan")):.3g}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


_SHIFT_FIGURES = ("domains.png", "drift.png")


def render_index(summary: Mapping[str, Any], figures: Sequence[tuple[str, str]] = (),
                 title: str = "transferkit report") -> str:
    """The report page for ``summary`` with ``figures`` = [(png file name, caption), ...].

    Read top-down: the verdict, the shift between the domains (overlap picture, drift
    ranking), the leaderboard, the selected method's pictures, then the files and data."""
    skipped = summary.get("skipped") or {}
    shift = summary.get("diagnostics") or {}
    shift_figs = [f for f in figures if Path(f[0]).name in _SHIFT_FIGURES]
    other_figs = [f for f in figures if Path(f[0]).name not in _SHIFT_FIGURES]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>", _verdict_box(summary),
    ]
    if summary.get("warnings"):
        parts.append("<p><b>Check the data:</b></p><ul>" + "".join(
            f"<li>{escape(str(w))}</li>" for w in summary["warnings"]) + "</ul>")
    if shift or shift_figs:
        parts += ["<h2>Shift between the domains</h2>",
                  f"<p>{escape(shift.get('summary', ''))}</p>" if shift else "",
                  _figures(shift_figs), _drift_table(shift)]
    parts += [
        "<h2>Leaderboard</h2>",
        f'<p class="muted">{escape(summary.get("evaluation", ""))} '
        f'{escape(summary.get("selection", ""))}</p>',
        _methods_table(summary),
    ]
    delivered = summary.get("delivered_method") or summary.get("best_method")
    files = []
    if summary.get("predictions"):
        files.append(f'<li><a href="{escape(summary["predictions"], quote=True)}">'
                     f'{escape(summary["predictions"])}</a>: predictions of '
                     f"{escape(str(delivered))} (first seed) on the target</li>")
    if summary.get("model"):
        files.append(f"<li><code>{escape(summary['model'])}/</code>: that model, saved; load "
                     "it with <code>transferkit.load</code> or <code>transferkit predict</code>"
                     "</li>")
    if files:
        parts.append(f"<ul>{''.join(files)}</ul>")
    if other_figs:
        parts += ["<h2>The selected method and the others</h2>", _figures(other_figs)]
    if skipped:
        items = "".join(f"<li><b>{escape(k)}</b>: {escape(str(v))}</li>"
                        for k, v in skipped.items())
        parts += ["<h2>Methods not run</h2>", f"<ul>{items}</ul>"]
    parts += ["<h2>Data</h2>", _data_table(summary)]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts += [f'<p class="muted">transferkit {escape(str(summary.get("version", "")))}, '
              f"estimator: {escape(str(summary.get('estimator', '')))}, seeds: "
              f"{escape(str(summary.get('seeds', '')))}; written {stamp}. The numbers are "
              "in summary.json.</p>", "</body></html>"]
    return "\n".join(p for p in parts if p)


def write_index(path: str | os.PathLike, summary: Mapping[str, Any],
                figures: Sequence[tuple[str, str]] = (), title: str = "transferkit report"
                ) -> str:
    """Write :func:`render_index` to ``path`` (UTF-8) and return the path."""
    Path(path).write_text(render_index(summary, figures, title), encoding="utf-8")
    return str(path)
