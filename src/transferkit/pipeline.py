"""``transferkit run``: compare the methods that fit a problem and write a report.

With no data it runs the seed tutorial's Two Moons problem (target rotated by 30°), so
one command shows the whole story: source-only vs importance weighting, with the seed's
network and KLIEP settings. With user tables, labelled target rows are the evaluation
ground truth; a fraction of them can instead be given to the methods for training.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import CLASSIFICATION, _missing_mask, infer_task
from .errors import InputError
from .registry import MethodInfo, get_method
from .registry import methods as registered_methods
from .selection.choice import AUTO_CRITERIA, CAUTIOUS_GUARD_SE, DEFAULT_GUARD_SE, choose
from .selection.compare import NEED_SOURCE_ROWS, Leaderboard, compare
from .selection.verdict import Verdict, judge

__all__ = ["run", "execute", "RunResult", "make_estimator", "ESTIMATOR_CHOICES",
           "select_methods"]

ESTIMATOR_CHOICES = ("auto", "mlp", "linear", "boosting")
REFERENCE = "SourceOnly"
TARGET_ONLY = "TargetOnly"
DEFAULT_DATA = "make_two_moons_shift(n_samples=100, rotation=30, random_state=0)"
#: the seed tutorial's network (2 -> 10 -> 10 -> 1, Adam 1e-3, 800 epochs, batch 34).
SEED_NETWORK = {"hidden_layer_sizes": (10, 10), "lr": 1e-3, "epochs": 800, "batch_size": 34,
                "standardize": False}
#: the seed tutorial's KLIEP kernel widths.
SEED_METHOD_PARAMS = {"KLIEP": {"sigmas": [0.1, 1, 10]}}
_REPORT_MARKER = "summary.json"


def seed_method_params(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Hyper-parameters of the seed tutorials for the methods in ``names``: KLIEP's widths,
    and ADAPT's Two Moons networks and optimiser for every deep method."""
    from .feature.presets import adapt_two_moons_settings

    params = {k: v for k, v in SEED_METHOD_PARAMS.items() if k in names}
    for name in names:
        info = get_method(name)
        if info.backend == "torch" and info.family == "feature":
            params[name] = adapt_two_moons_settings(name)
    return params


@dataclass
class RunResult:
    """What :func:`execute` returns: the summary, the leaderboard and where it was written."""

    summary: dict[str, Any]
    leaderboard: Leaderboard
    output: Path


def make_estimator(kind: Any, task: str, *, seed_problem: bool = False) -> Any:
    """The base estimator for a preset name (an estimator object is returned as is).

    Parameters
    ----------
    kind : {"auto", "mlp", "linear", "boosting"} or estimator
        ``"auto"``: the seed's network on the seed problem, else ``"mlp"``; ``"mlp"``: a
        torch MLP (64, 64), 200 epochs, standardised inputs; ``"linear"``: logistic
        regression / ridge; ``"boosting"``: histogram gradient boosting.
    task : {"classification", "regression"}
    seed_problem : bool
        Whether this is the default Two Moons run.
    """
    if not isinstance(kind, str):
        return kind
    key = kind.lower()
    if key not in ESTIMATOR_CHOICES:
        raise InputError(f"unknown estimator {kind!r}; choose one of "
                         f"{', '.join(ESTIMATOR_CHOICES)}.")
    classification = task == CLASSIFICATION
    if key == "auto" and seed_problem:
        from .nn import MLPClassifier, MLPRegressor

        return (MLPClassifier if classification else MLPRegressor)(**SEED_NETWORK)
    if key in ("auto", "mlp"):
        from .nn import MLPClassifier, MLPRegressor

        cls = MLPClassifier if classification else MLPRegressor
        return cls(hidden_layer_sizes=(64, 64), epochs=200, standardize=True)
    if key == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        return LogisticRegression(max_iter=1000) if classification else Ridge()
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return HistGradientBoostingClassifier() if classification else HistGradientBoostingRegressor()


def select_methods(task: str, *, with_target_labels: bool,
                   names: Iterable[str] | None = None
                   ) -> tuple[list[MethodInfo], dict[str, str]]:
    """Registered methods that can run here, and why the others cannot.

    Unsupervised methods always fit; methods that need target labels only when some are
    given for training. :data:`REFERENCE` (SourceOnly) is always included, and
    :data:`TARGET_ONLY` whenever target labels are given for training. ``names``
    restricts the choice (unknown names raise :class:`~transferkit.errors.UnknownMethodError`).
    """
    if names is None:
        candidates = list(registered_methods())
    else:
        candidates = [get_method(n) for n in names]
    # The references the verdict measures against: source-only always, target-only when
    # there are target labels to train it on.
    for i, ref in enumerate([REFERENCE] + ([TARGET_ONLY] if with_target_labels else [])):
        if ref not in [c.name for c in candidates]:
            candidates.insert(i, get_method(ref))
    chosen: list[MethodInfo] = []
    skipped: dict[str, str] = {}
    for info in candidates:
        if info.name in [c.name for c in chosen]:
            continue
        if task not in info.tasks:
            skipped[info.name] = f"handles {' and '.join(info.tasks)} only, not {task}"
        elif "unsupervised" in info.settings:
            chosen.append(info)
        elif "heterogeneous" in info.settings:
            skipped[info.name] = ("is for a source and a target with different columns; "
                                  "run it from Python (transferkit.heterogeneous)")
        elif not {"semi-supervised", "supervised"} & set(info.settings):
            skipped[info.name] = f"needs a {' or '.join(info.settings)} setup"
        elif not with_target_labels:
            skipped[info.name] = ("needs labelled target samples for training; set "
                                  "target_train_fraction (--target-train-fraction) above 0")
        else:
            chosen.append(info)
    return chosen, skipped


def _with_missing(y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A copy of ``y`` where the entries outside ``keep`` are unlabelled (NaN / None)."""
    if y.dtype.kind in "biuf":
        out = y.astype(np.float64)
        out[~keep] = np.nan
    else:
        out = y.astype(object)
        out[~keep] = None
    return out


def _split_target_labels(yt: np.ndarray, fraction: float, seed: int = 0
                         ) -> tuple[np.ndarray | None, np.ndarray, int]:
    """(labels for training or None, labels for evaluation, number used for training)."""
    known = ~_missing_mask(yt)
    if fraction <= 0:
        return None, yt, 0
    idx = np.flatnonzero(known)
    if idx.size == 0:
        raise InputError("target_train_fraction > 0 needs labelled target rows; the target "
                         "has none (its label cells are all empty).")
    k = min(idx.size, max(1, int(round(fraction * idx.size))))
    train = np.zeros(yt.shape[0], dtype=bool)
    train[np.random.default_rng(seed).choice(idx, size=k, replace=False)] = True
    return _with_missing(yt, train), _with_missing(yt, known & ~train), k


def _check_output(out: Path) -> None:
    """Refuse, before any fitting, an output the report could not be written to or would
    overwrite someone's files in."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output {str(out)!r} is a file; pass a folder name.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / _REPORT_MARKER).exists():
            raise InputError(f"output folder {str(out)!r} exists and is not a transferkit "
                             "report; choose a new folder so nothing of yours is overwritten.")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in _report_files(out))
        if foreign:
            more = ", ..." if len(foreign) > 3 else ""
            raise InputError(f"the report folder {str(out)!r} also holds files transferkit did "
                             f"not write ({', '.join(foreign[:3])}{more}); move them out or "
                             "choose another folder, since a new report replaces the folder.")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        why = "not a folder" if not parent.is_dir() else "not writable"
        raise InputError(f"cannot write the output folder {str(out)!r}: {str(parent)!r} is "
                         f"{why}; choose another place.")


def _report_files(out: Path) -> set[str]:
    """What an earlier run wrote into the report folder ``out``, by its summary.json."""
    try:
        old = json.loads((out / _REPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    named = [old.get("predictions"), old.get("model"), *(old.get("files") or [])]
    return {_REPORT_MARKER, "index.html", "predictions.csv", "model",
            ".DS_Store", "Thumbs.db", "desktop.ini",  # what file browsers leave behind
            *(Path(str(f)).parts[0] for f in named if f)}


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise InputError(f"seeds must be at least 1, got {seeds}.")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out:
        raise InputError("seeds is empty; pass a count (e.g. 5) or a list of seeds.")
    return out


def _labels_with_missing(values: Any) -> np.ndarray:
    """Labels with empty cells as NaN (numbers) or None (strings), as ``fit`` reads them."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr
    return np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                     for v in arr], dtype=object)


def _load_encoded(source: Any, target: Any, label: str | None, text_column: str | None,
                  encoder: str | None, ignore: Sequence[str] | None = None
                  ) -> dict[str, Any] | None:
    """Image folders or a text column, encoded by a pretrained model (None otherwise)."""
    is_dir = [isinstance(o, (str, os.PathLike)) and Path(o).is_dir() for o in (source, target)]
    if any(is_dir):
        if not all(is_dir):
            raise InputError("pass two image folders (source and target), or two tables.")
        if ignore:
            raise InputError("ignore names table columns; image folders have none.")
        from .datasets.images import load_image_folder
        from .pretrained import ImageEncoder

        (ps, ys), (pt, yt) = load_image_folder(source), load_image_folder(target)
        if ys is None or any(v is None for v in ys):
            raise InputError(f"every source image needs a label: put them in one subfolder "
                             f"per class under {source}.")
        enc = ImageEncoder(encoder or "efficientnet-lite0")
        Xs, Xt, name = enc.transform(ps), enc.transform(pt), getattr(enc, "name", encoder)
        yt = np.full(len(pt), None, dtype=object) if yt is None else yt
        kind, ignored, ids = "image folder", [], ("file", [str(p) for p in pt])
    elif text_column is not None:
        if label is None:
            raise InputError("pass label: the name of the label column of the source table.")
        from .datasets.tables import load_table, split_labels

        frames = [load_table(o) if isinstance(o, (str, os.PathLike)) else o
                  for o in (source, target)]
        if text_column == label:
            raise InputError(f"the text column and the label column are both {label!r}; "
                             "pass the column holding the texts as text_column.")
        check_text_column(frames, text_column)  # everything is checked before encoding
        ys, yt = split_labels(frames[0], frames[1], label)
        excluded_columns(frames, ignore, label)
        (Xs, Xt), name = encode_texts(frames, text_column, encoder)
        kind = f"text column {text_column!r}"
        ignored = [c for c in map(str, frames[0].columns) if c not in (text_column, label)]
        ids = _target_ids(frames[1], ignored, ignore)
    else:
        return None
    return {"Xs": np.asarray(Xs), "ys": _labels_with_missing(ys), "Xt": np.asarray(Xt),
            "yt": yt, "feature_names": [f"{name}[{i}]" for i in range(np.shape(Xs)[1])],
            "source": str(source) if isinstance(source, (str, os.PathLike)) else "DataFrame",
            "target": str(target) if isinstance(target, (str, os.PathLike)) else "DataFrame",
            "label": label, "seed_problem": False, "encoder": f"{name} ({kind})",
            "ignored_columns": ignored, "target_ids": ids}


def _load(source: Any, target: Any, label: str | None, text_column: str | None = None,
          encoder: str | None = None, ignore: Sequence[str] | None = None) -> dict[str, Any]:
    if source is not None and target is not None:
        encoded = _load_encoded(source, target, label, text_column, encoder, ignore)
        if encoded is not None:
            return encoded
    elif text_column is not None:
        raise InputError("text_column needs source and target tables.")
    if source is None and target is None:
        if label is not None or ignore:
            raise InputError(f"{'label' if label is not None else 'ignore'} is given but no "
                             "data; pass source and target tables too.")
        from .datasets import make_two_moons_shift

        Xs, ys, Xt, yt = make_two_moons_shift(n_samples=100, rotation=30, random_state=0)
        return {"Xs": Xs, "ys": ys, "Xt": Xt, "yt": yt, "feature_names": ["x1", "x2"],
                "source": DEFAULT_DATA + " source", "target": DEFAULT_DATA + " target",
                "label": None, "seed_problem": True}
    if source is None or target is None:
        raise InputError("pass both a source and a target table (or neither, for the demo).")
    if label is None:
        raise InputError("pass label: the name of the label column of the source table.")
    from .datasets.tables import load_table, split_domains, suspicious_columns

    frames, names = [], []
    for obj in (source, target):
        if isinstance(obj, (str, os.PathLike)):
            frames.append(load_table(obj))
            names.append(str(obj))
        else:
            frames.append(obj)
            names.append(f"DataFrame {getattr(obj, 'shape', '')}")
    ignore, named = excluded_columns(frames, ignore, label)
    Xs, ys, Xt, yt, feature_names = split_domains(frames[0], frames[1], label, ignore=ignore)
    used = [c for c in map(str, frames[0].columns) if c != label and c not in ignore]
    return {"Xs": Xs, "ys": ys, "Xt": Xt, "yt": yt, "feature_names": feature_names,
            "source": names[0], "target": names[1], "label": label, "seed_problem": False,
            "ignored_columns": list(ignore), "warnings": suspicious_columns(frames, used),
            "target_ids": _target_ids(frames[1], ignore, named)}


def excluded_columns(frames: Sequence[Any], ignore: Sequence[str] | None,
                     label: str | None = None) -> tuple[list[str], list[str]]:
    """The table columns that are not features (those ``ignore`` names, then any named
    id, index or row_id), and the named ones; ``run`` and ``diagnose`` share it."""
    from .datasets.tables import guess_id_column

    named = list(ignore or [])
    if label is not None and label in named:
        raise InputError(f"ignore names the label column {label!r}; the label is never a "
                         "feature, leave it out of ignore.")
    unknown = [c for c in named if not any(c in map(str, f.columns) for f in frames)]
    if unknown:
        raise InputError(f"ignore names {', '.join(map(repr, unknown))}, which neither table "
                         f"has; its columns are {', '.join(map(str, frames[0].columns))}.")
    ids = sorted({c for f in frames if (c := guess_id_column(f)) is not None} - set(named))
    return named + ids, named


def check_text_column(frames: Sequence[Any], text_column: str) -> None:
    """Both tables hold ``text_column``, and it holds text."""
    import pandas as pd

    for name, frame in zip(("source", "target"), frames):
        if text_column not in frame.columns:
            raise InputError(f"the {name} table has no column {text_column!r}; its "
                             f"columns are {list(frame.columns)}.")
        if pd.api.types.is_numeric_dtype(frame[text_column]):
            raise InputError(f"the {name}'s text column {text_column!r} holds numbers, "
                             "not texts; pass the column with the texts.")


def encode_texts(frames: Sequence[Any], text_column: str, encoder: str | None
                 ) -> tuple[list[np.ndarray], str]:
    """Each table's ``text_column`` embedded by a pretrained sentence encoder, and the
    encoder's name."""
    from .pretrained import TextEncoder

    enc = TextEncoder(encoder or "all-MiniLM-L6-v2")
    return [enc.transform(f[text_column].fillna("").astype(str).tolist())
            for f in frames], getattr(enc, "name", encoder)


def _target_ids(target: Any, ignored: Sequence[str], named: Sequence[str] | None = None
                ) -> tuple[str, Any] | None:
    """The target's identifier column (name, values) for predictions.csv: among the
    left-out columns (those the user ``named`` first), the one named like an id, else
    the only one, if any. A name predictions.csv uses itself is prefixed with ``id:``."""
    from .datasets.tables import ID_NAMES

    cols = [c for c in ignored if c in map(str, target.columns)]
    mine = [c for c in (named or []) if c in cols]
    pool = mine or cols
    pick = [c for c in pool if c.lower() in ID_NAMES][:1] or (pool if len(pool) == 1 else [])
    if not pick:
        return None
    clash = pick[0] in ("row", "prediction") or pick[0].startswith("proba_")
    return (f"id:{pick[0]}" if clash else pick[0]), target[pick[0]].to_numpy()


def _check_classes(ys: np.ndarray, yt: np.ndarray) -> None:
    """The source needs two classes, and every labelled target class must be a source
    class: the methods predict only those, so other labels would be scored as errors
    and mislead the verdict."""
    from .errors import SingleClassError

    source = set(ys.tolist())
    if len(source) < 2:
        raise SingleClassError(f"the source labels hold a single class ({ys.tolist()[0]!r}); "
                               "a classifier needs at least two classes in the source.")
    known = yt[~_missing_mask(yt)]
    unseen = sorted({v for v in known.tolist() if v not in source}, key=str)
    if unseen:
        show = ", ".join(map(repr, unseen[:5])) + (", ..." if len(unseen) > 5 else "")
        raise InputError(
            f"the target labels {show} are not source classes "
            f"({', '.join(map(repr, sorted(source, key=str)[:10]))}); every method predicts "
            "source classes only. Use the source's names for the target's labels, or leave "
            "those rows unlabelled.")


def _evaluation_text(n_eval: int, n_seeds: int) -> str:
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if not n_eval:
        return (f"No labelled target rows to score on: the accuracies are unknown; {seeds} "
                "per method.")
    return (f"Scored on {n_eval} labelled target samples that no method saw in training; "
            f"mean ± std over {seeds}.")


def _share_like_a_new_folder(path: Path) -> None:
    """Give the report folder (a mkdtemp, private) the permissions the user's umask
    gives any new folder, so it can be shared like one."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod(0o777 & ~mask)


def _improvement(board: Leaderboard, best: str | None) -> dict[str, Any] | None:
    """Paired (same seed) difference best - SourceOnly: mean and sample std."""
    if best is None or REFERENCE not in board:
        return None
    a, b = board.scores(best), board.scores(REFERENCE)
    common = [s for s in board.seeds if s in a and s in b]
    if not common:
        return None
    diff = np.array([a[s] - b[s] for s in common])
    return {"mean": float(diff.mean()),
            "std": float(diff.std(ddof=1)) if diff.size > 1 else 0.0,
            "metric": board.metric, "n_seeds": len(common), "method": best}


#: Below this many source rows none are held out for selection: each is needed to train
#: (the default Two Moons has 100), and IWCV on a few dozen rows says little.
MIN_SOURCE_FOR_HOLDOUT = 200


def _holdout(ys: np.ndarray, task: str) -> float:
    """Fraction of the source held out for the label-free criteria: a quarter when the
    source is large enough (and, for classification, every class has 8 rows), else 0."""
    if len(ys) < MIN_SOURCE_FOR_HOLDOUT:
        return 0.0
    if task == CLASSIFICATION:
        _, counts = np.unique(np.asarray(ys).astype(str), return_counts=True)
        if counts.min() < 8:
            return 0.0
    return 0.25


def _chance(y_eval: np.ndarray, task: str) -> float | None:
    """Score of a model that ignores the inputs: the majority-class rate; 0 for R²."""
    known = np.asarray(y_eval)[~_missing_mask(np.asarray(y_eval))]
    if known.size == 0:
        return None
    if task != CLASSIFICATION:
        return 0.0
    _, counts = np.unique(known.astype(str), return_counts=True)
    return float(counts.max() / known.size)


def _selection_text(board: Leaderboard, holdout: float) -> str:
    label_free = [c for c in board.criteria if c != "target_cv"]
    by_labels = ("" if "target_cv" not in board.criteria else
                 " The labelled target rows given for training choose instead, by "
                 "cross-validation (target_cv).")
    if not label_free:
        return "No label-free selection was possible." + by_labels
    names = ", ".join(label_free)
    if not holdout:
        return (f"With fewer than {MIN_SOURCE_FOR_HOLDOUT} source rows every row trains; "
                f"the label-free criteria ({names}) need no source labels and never look at "
                "target labels." + by_labels)
    return (f"Every method was fitted on {1 - holdout:.0%} of the source; the other "
            f"{holdout:.0%} and the target feed the label-free criteria ({names}), which "
            "never look at target labels." + by_labels)


def _deliverable(board: Leaderboard, verdict: Verdict) -> str | None:
    """The method whose model and target predictions are saved: the verdict's advice when
    it ran, else the label-free choice."""
    if verdict.use in board.models:
        return verdict.use
    return verdict.selected if verdict.selected in board.models else board.best()


def _method_entry(row: dict[str, Any], task: str) -> dict[str, Any]:
    keys = (("target_accuracy_mean", "target_accuracy_std") if task == CLASSIFICATION
            else ("r2_mean", "r2_std", "mse_mean", "mse_std"))
    return {**{k: row[k] for k in keys}, "fit_seconds": row["fit_seconds"],
            "n_seeds": row["n_seeds"], "error": row["error"],
            "selection_scores": row.get("selection_scores")}


def _describe(estimator: Any) -> str:
    text = " ".join(repr(estimator).split())
    return text if len(text) <= 200 else text[:199] + "…"


def _write_predictions(path: Path, model: Any, Xt: np.ndarray,
                       ids: tuple[str, Any] | None = None) -> None:
    """Target predictions (and class probabilities) per row, with the rows' ``ids``
    (column name, values: image files, an id column) when there are some."""
    import pandas as pd

    frame = pd.DataFrame({"row": np.arange(Xt.shape[0])})
    if ids is not None:
        frame[ids[0]] = list(ids[1])
    frame["prediction"] = model.predict(Xt)
    if getattr(model, "task_", None) == CLASSIFICATION and hasattr(model, "predict_proba"):
        proba = model.predict_proba(Xt)
        for j, c in enumerate(model.classes_):
            frame[f"proba_{c}"] = proba[:, j]
    frame.to_csv(path, index=False)


def _finish_outputs(tmp: Path, board: Leaderboard, best: str | None, data: dict[str, Any],
                    summary: dict[str, Any]) -> None:
    """Best model and its target predictions; a failure here is noted, not fatal."""
    model = board.models.get(best) if best else None
    if model is None:
        return
    summary["delivered_method"] = best
    try:
        _write_predictions(tmp / "predictions.csv", model, data["Xt"], data.get("target_ids"))
        summary["predictions"] = "predictions.csv"
    except Exception as exc:  # noqa: BLE001 - the report stays useful without them
        summary["predictions_error"] = " ".join(str(exc).split())
    try:
        model.save(str(tmp / "model"))
        summary["model"] = "model"
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(tmp / "model", ignore_errors=True)
        summary["model_error"] = " ".join(str(exc).split())


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an old report there is replaced only once ``tmp`` is ready."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _clean_floats(obj: Any) -> Any:
    """NaN / inf become None so summary.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def execute(output: str | os.PathLike = "transferkit-output", source: Any = None,
            target: Any = None, label: str | None = None, *,
            methods: Sequence[str] | None = None, seeds: int | Sequence[int] = 3,
            estimator: Any = "auto", target_train_fraction: float = 0.0,
            n_jobs: int | None = None, progress: bool = True,
            text_column: str | None = None, encoder: str | None = None,
            cautious: bool = False, ignore: Sequence[str] | str | None = None) -> RunResult:
    """Like :func:`run`, and also return the :class:`Leaderboard` (for printing)."""
    start = time.perf_counter()
    out = Path(output)
    _check_output(out)
    seed_list = _seed_list(seeds)
    if not 0.0 <= float(target_train_fraction) <= 1.0:
        raise InputError(f"target_train_fraction must be in [0, 1], got {target_train_fraction}.")
    if isinstance(estimator, str) and estimator.lower() not in ESTIMATOR_CHOICES:
        raise InputError(f"unknown estimator {estimator!r}; choose one of "
                         f"{', '.join(ESTIMATOR_CHOICES)}.")
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if methods is not None and not methods:
        raise InputError("methods is empty; name at least one method, or leave it out to "
                         "compare every method that fits.")
    for name in methods or ():
        get_method(name)  # an unknown name fails before any data is loaded
    if isinstance(ignore, str):
        ignore = [c.strip() for c in ignore.split(",") if c.strip()]

    data = _load(source, target, label, text_column, encoder, ignore)
    Xs, ys, Xt, yt = data["Xs"], data["ys"], data["Xt"], data["yt"]
    base = None if isinstance(estimator, str) else estimator
    task = infer_task(np.asarray(ys), base)
    if task == CLASSIFICATION:
        _check_classes(np.asarray(ys), np.asarray(yt))
    yt_train, y_eval, n_train = _split_target_labels(np.asarray(yt), float(target_train_fraction))
    est = make_estimator(estimator, task, seed_problem=data["seed_problem"])
    chosen, skipped = select_methods(task, with_target_labels=yt_train is not None,
                                     names=methods)
    names = [m.name for m in chosen]
    params = seed_method_params(names) if data["seed_problem"] else {}
    if n_jobs is None:
        import joblib

        n_jobs = max(1, min(joblib.cpu_count(), len(names) * len(seed_list)))
    shift = _diagnostics(Xs, ys, Xt, data["feature_names"], y_eval)
    holdout = _holdout(ys, task)
    criteria = [c for c in AUTO_CRITERIA if (holdout or c not in NEED_SOURCE_ROWS)
                and (task == CLASSIFICATION or c != "entropy")]
    criteria += ["target_cv"] if yt_train is not None else []
    board = compare(chosen, Xs, ys, Xt, yt_train, y_eval=y_eval, estimator=est,
                    method_params=params, seeds=seed_list, n_jobs=n_jobs, progress=progress,
                    selection=criteria or None, selection_holdout=holdout)

    best = board.best()
    imp = _improvement(board, best)
    choice = choose(board, guard_se=CAUTIOUS_GUARD_SE if cautious else DEFAULT_GUARD_SE)
    warnings = list(data.get("warnings", []))
    known = np.asarray(y_eval)[~_missing_mask(np.asarray(y_eval))]
    chance = _chance(y_eval, task)
    if task == CLASSIFICATION and known.size and len(np.unique(known.astype(str))) == 1:
        chance = None  # "better than chance" means nothing when every row is one class
        warnings.append(f"the {known.size} labelled target rows all hold one class "
                        f"({known.tolist()[0]!r}): their "
                        "accuracy says little about the others.")
    verdict = judge(board, choice, shift, chance=chance)
    summary: dict[str, Any] = {
        "task": task,
        "data": {
            "source": data["source"], "target": data["target"], "label": data["label"],
            "n_source": int(Xs.shape[0]), "n_target": int(Xt.shape[0]),
            "n_features": int(Xs.shape[1]), "feature_names": list(data["feature_names"]),
            "n_target_labelled": int((~_missing_mask(np.asarray(yt))).sum()),
            "n_target_train_labels": n_train, "n_target_eval": board.n_eval,
            "encoder": data.get("encoder"), "ignored_columns": data.get("ignored_columns", []),
        },
        "warnings": warnings,
        "metric": board.metric,
        "evaluation": _evaluation_text(board.n_eval, len(seed_list)),
        "selection": _selection_text(board, holdout) + (
            " Cautious rule: a method replaces SourceOnly only if it is also clearly better "
            "on reverse validation." if choice.rule == "cautious" else ""),
        "methods": {r["method"]: _method_entry(r, task) for r in board.rows},
        "selected_method": choice.method,
        "selection_rule": choice.rule,
        "selection_reasons": choice.reasons,
        "verdict": verdict.to_dict(),
        "best_method": best,
        "improvement_over_source_only": imp,
        "negative_transfer": _negative(board),
        "diagnostics": shift,
        "skipped": skipped,
        "estimator": (estimator if isinstance(estimator, str) else "custom") + ": "
                     + _describe(est),
        "method_params": params,
        "seeds": seed_list,
        "n_jobs": n_jobs,
        "version": _version(),
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        from .report import write_report

        _finish_outputs(tmp, board, _deliverable(board, verdict), data, summary)
        summary["files"] = write_report(tmp, board, Xs, ys, Xt, y_eval, summary)
        summary["wall_seconds"] = round(time.perf_counter() - start, 2)
        text = json.dumps(_clean_floats(summary), indent=2, default=_json_default)
        (tmp / "summary.json").write_text(text + "\n", encoding="utf-8")
        _share_like_a_new_folder(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(summary=json.loads(text), leaderboard=board, output=out)


def run(output: str | os.PathLike = "transferkit-output", source: Any = None,
        target: Any = None, label: str | None = None, *,
        methods: Sequence[str] | None = None, seeds: int | Sequence[int] = 3,
        estimator: Any = "auto", target_train_fraction: float = 0.0,
        n_jobs: int | None = None, progress: bool = True, text_column: str | None = None,
        encoder: str | None = None, cautious: bool = False,
        ignore: Sequence[str] | str | None = None) -> dict[str, Any]:
    """Compare every method that fits the problem and write a report to ``output``.

    Parameters
    ----------
    output : path, default="transferkit-output"
        Folder to write ``summary.json``, ``index.html``, the PNGs, ``predictions.csv``
        (best method on the target) and ``model/`` (its saved model) into. Everything is
        written to a temporary sibling first and moved into place at the end, so a
        failure leaves nothing half-written; an existing report there is replaced.
    source, target : path or DataFrame, optional
        CSV / Parquet tables (or DataFrames), or two image folders (one subfolder per
        class; target images may sit unlabelled directly in the folder), whose images a
        pretrained ``encoder`` turns into features first. Neither: the seed's Two Moons
        problem.
    label : str, optional
        Label column (required with tables; optional in the target, where empty cells
        mark unlabelled rows).
    methods : list of str, optional
        Restrict the comparison to these names (SourceOnly is always added).
    seeds : int or list of int, default=3
        Repetitions (an int ``n`` means seeds ``0..n-1``). Three keep the default run
        (18 methods, the deep ones trained for the seed tutorial's 800 epochs) near a
        minute on 2 cores; pass more for tighter error bars.
    estimator : {"auto", "mlp", "linear", "boosting"} or estimator, default="auto"
        Base learner; see :func:`make_estimator`.
    target_train_fraction : float, default=0.0
        Fraction of the labelled target rows given to the methods for training (then not
        used for evaluation). With 0, methods that need target labels are skipped.
    n_jobs : int, optional
        Parallel fits (default: the number of CPUs); joblib's ``parallel_config``
        chooses the backend.
    progress : bool, default=True
        Show a progress bar.
    text_column : str, optional
        Column of the tables holding text: a pretrained sentence encoder turns it into the
        features (the other columns are not used).
    encoder : str, optional
        Pretrained model for text or images (default all-MiniLM-L6-v2 / efficientnet-lite0;
        see :mod:`transferkit.pretrained`).
    cautious : bool, default=False
        Choose with the cautious rule (:data:`~transferkit.selection.choice.CAUTIOUS_GUARD_SE`):
        leave source-only only for a method that is clearly better on reverse validation
        *and* on target confidence. Safer where no target labels can check the choice
        (on 58 benchmark problems at worst 2.7 points below source-only against 12.6
        for the default), at some cost in average gain. With ``target_train_fraction``
        > 0 target cross-validation chooses instead (``selection_rule`` says which rule
        chose).
    ignore : list of str or comma-separated str, optional
        Table columns that are not features (identifiers, free notes). A column named
        ``id``, ``index`` or ``row_id`` is always left out; ``summary["warnings"]`` names
        other columns that look like identifiers or free text.

    Returns
    -------
    dict
        The summary (as written to ``summary.json``): ``task``, ``data``, ``methods``
        (per method ``target_accuracy_mean/std`` or ``r2_mean/std`` and ``mse_mean``,
        ``fit_seconds``, ``n_seeds``, ``error``), ``selected_method`` (chosen without
        target labels, :func:`transferkit.selection.choose`) with ``selection_reasons``,
        ``verdict`` (:class:`transferkit.selection.verdict.Verdict` as a dict:
        ``decision``, ``use``, ``headline``, ``reasons``, ``verified``, ``evidence``),
        ``diagnostics`` (the shift), ``best_method`` (best on the held-out target labels,
        in hindsight), ``improvement_over_source_only`` (paired mean and std over seeds),
        ``delivered_method`` (whose model and predictions are saved), ``skipped``.
    """
    return execute(output, source, target, label, methods=methods, seeds=seeds,
                   estimator=estimator, target_train_fraction=target_train_fraction,
                   n_jobs=n_jobs, progress=progress, text_column=text_column,
                   encoder=encoder, cautious=cautious, ignore=ignore).summary


def _diagnostics(Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray,
                 feature_names: Sequence[str], yt: np.ndarray | None = None) -> dict[str, Any]:
    """The shift between the domains (transferkit.diagnostics), with the drift ranking
    cut to its 20 most shifted features; target labels ``yt``, where some are known, only
    show the observed class mix beside the label-shift estimate."""
    import pandas as pd

    from .diagnostics import diagnose

    names = [str(n) for n in feature_names]
    frame = (lambda X: pd.DataFrame(np.asarray(X), columns=names)) if len(names) == np.shape(
        Xs)[1] and len(set(names)) == len(names) else np.asarray
    report = diagnose(frame(Xs), frame(Xt), np.asarray(ys), yt=yt, random_state=0).to_dict()
    report["drift"] = report["drift"][:20]
    return report


def _negative(board: Leaderboard) -> list[str]:
    """Methods whose mean score is below SourceOnly's (negative transfer)."""
    if REFERENCE not in board or board[REFERENCE][board.score_key] is None:
        return []
    ref = board[REFERENCE][board.score_key]
    return [r["method"] for r in board.rows
            if r["method"] != REFERENCE and r[board.score_key] is not None
            and r[board.score_key] < ref]


def _version() -> str:
    from . import __version__

    return __version__
