"""Compare transfer methods on one source/target problem, over several seeds.

Every (method, seed) pair is one job: build the method with ``tk.make``, fit it on the
source and the (partly labelled) target, time the fit and score it on held-out target
labels. Jobs run through :class:`joblib.Parallel`, so
``with joblib.parallel_config(backend="dask"): compare(...)`` moves them to a cluster.
A method that fails is recorded with its error message; the others go on.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

from .._validation import CLASSIFICATION, _missing_mask, check_domains, check_X, check_y
from ..errors import InputError, MissingTargetLabelsError, UnsupportedTaskError
from ..registry import MethodInfo, get_method
from .criteria import _entropy, _r2_terms, paired_choice

#: Criteria that score on held-out labelled source rows (need ``selection_holdout`` > 0).
NEED_SOURCE_ROWS = ("iwcv", "dev", "reverse", "atc")
#: Board-level criterion: entropy of the seed-averaged target probabilities.
ENSEMBLE_ENTROPY = "ensemble_entropy"
#: Target rows whose probabilities are kept per fit for it (a fixed subsample beyond).
MAX_PROBA_ROWS = 5000

__all__ = ["compare", "Leaderboard"]


# --------------------------------------------------------------------------- leaderboard
@dataclass
class Leaderboard:
    """The result of :func:`compare`: one row per method, best first.

    Attributes
    ----------
    task : str
        ``"classification"`` or ``"regression"``.
    rows : list of dict
        Per method: ``method``, the score columns (``target_accuracy_mean`` /
        ``target_accuracy_std`` for classification; ``r2_mean`` / ``r2_std`` /
        ``mse_mean`` / ``mse_std`` for regression; ``None`` without evaluation labels),
        ``fit_seconds`` (mean over seeds), ``n_seeds`` (successful fits) and ``error``
        (the first error message, or ``None``). Sorted by mean score, best first; rows
        without a score come last, in the order the methods were given.
    results : list of dict
        Per (method, seed): ``method``, ``seed``, ``score``, ``mse``, ``fit_seconds``,
        ``error`` and ``warnings`` (the distinct warning messages the fit raised).
    models : dict
        Method name -> the model fitted with the first seed (for plots); methods whose
        first seed failed are absent.
    n_eval : int
        Number of target samples the scores are computed on.
    seeds : list of int
        The seeds, in the order given; ``models`` come from ``seeds[0]``.
    selection : str or None
        The primary label-free criterion (the first of ``compare(selection=...)``).
    criteria : dict of str -> bool
        Every criterion scored, and whether greater is better for it.
    """

    task: str
    rows: list[dict[str, Any]]
    results: list[dict[str, Any]] = field(repr=False)
    models: dict[str, Any] = field(repr=False)
    n_eval: int = 0
    seeds: list[int] = field(default_factory=list)
    selection: str | None = None
    criteria: dict[str, bool] = field(default_factory=dict)

    @property
    def selection_greater_is_better(self) -> bool:
        """Whether a higher score of the primary criterion ranks a method higher."""
        return self.criteria.get(self.selection, True)

    @property
    def metric(self) -> str:
        """``"accuracy"`` or ``"r2"``: what the score columns hold."""
        return "accuracy" if self.task == CLASSIFICATION else "r2"

    @property
    def score_key(self) -> str:
        """Name of the mean-score column."""
        return "target_accuracy_mean" if self.task == CLASSIFICATION else "r2_mean"

    @property
    def std_key(self) -> str:
        """Name of the score standard-deviation column."""
        return "target_accuracy_std" if self.task == CLASSIFICATION else "r2_std"

    @property
    def methods(self) -> list[str]:
        """Method names in leaderboard order."""
        return [r["method"] for r in self.rows]

    @property
    def candidates(self) -> list[str]:
        """Method names in the order they were given to :func:`compare`: label-free
        choices iterate in this order, since the leaderboard order is itself the ranking
        by target labels (ties must not be broken by it)."""
        return list(dict.fromkeys(r["method"] for r in self.results)) or self.methods

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> dict[str, Any]:
        for row in self.rows:
            if row["method"] == name:
                return row
        raise KeyError(f"{name!r} is not on this leaderboard; it has {self.methods}.")

    def __contains__(self, name: object) -> bool:
        return any(r["method"] == name for r in self.rows)

    def ran(self, method: str) -> bool:
        """Whether ``method`` was fitted without error on at least one seed."""
        return any(r["method"] == method and r["error"] is None for r in self.results)

    def mean_scores(self) -> dict[str, float]:
        """Method -> mean target score over seeds, for the methods that have one."""
        return {r["method"]: r[self.score_key] for r in self.rows
                if r[self.score_key] is not None}

    def scores(self, method: str) -> dict[int, float]:
        """Seed -> score of ``method`` (seeds whose fit failed are absent)."""
        return {r["seed"]: r["score"] for r in self.results
                if r["method"] == method and r["score"] is not None}

    def model_score(self, method: str) -> float | None:
        """Score of the model in ``models[method]`` (the first seed's fit), or None."""
        return self.scores(method).get(self.seeds[0]) if self.seeds else None

    def best(self) -> str | None:
        """Name of the method with the best mean score, or None when nothing was scored."""
        scored = [r for r in self.rows if r[self.score_key] is not None]
        return scored[0]["method"] if scored else None

    def terms(self, method: str, kind: str = "eval") -> np.ndarray | None:
        """Per-row terms of ``method``, averaged over its successful seeds.

        ``kind="eval"``: correctness (or R² terms) on the evaluation rows, whose mean is
        the score; a criterion name: that criterion's terms; ``"ensemble_entropy"``: the
        entropy of the seed-averaged target probabilities (the seed ensemble's total
        uncertainty: confident *and* reproducible predictions score low; Lakshminarayanan
        et al., 2017). Every method is scored on the same rows, so two methods' terms
        pair row by row. None when there are none."""
        if kind == ENSEMBLE_ENTROPY:
            proba = self.mean_target_proba(method, min_seeds=2)
            return None if proba is None else _entropy(proba)
        rows = [r for r in self.results if r["method"] == method and r["error"] is None]
        arrays = [r["eval_terms"] if kind == "eval" else r["selection_terms"].get(kind)
                  for r in rows]
        arrays = [a for a in arrays if a is not None]
        return np.mean(arrays, axis=0) if arrays else None

    def mean_target_proba(self, method: str, min_seeds: int = 1) -> np.ndarray | None:
        """``method``'s target class probabilities averaged over its successful seeds
        (the seed ensemble's prediction), or None with fewer than ``min_seeds`` of them.
        ``compare`` keeps them for classification scored with selection criteria."""
        probas = [r["target_proba"] for r in self.results if r["method"] == method
                  and r["error"] is None and r.get("target_proba") is not None]
        if len(probas) < max(min_seeds, 1) or len({p.shape for p in probas}) != 1:
            return None
        return np.mean(probas, axis=0, dtype=np.float64)

    def selected(self, criterion: str | None = None, *, reference: str | None = "SourceOnly",
                 confidence: float = 0.95) -> str | None:
        """The method a label-free criterion picks (``compare(..., selection=...)``).

        With ``reference`` on the board (default: SourceOnly), another method is picked
        only if it beats the reference on the criterion's per-row terms by more than their
        paired standard error allows at ``confidence`` (see
        :func:`~transferkit.selection.criteria.paired_choice`); ``reference=None`` takes
        the best mean. None without a criterion or scores."""
        choice = self.selection_details(criterion, reference=reference, confidence=confidence)
        return None if choice is None else choice[0]

    def selection_details(self, criterion: str | None = None, *,
                          reference: str | None = "SourceOnly", confidence: float = 0.95
                          ) -> tuple[str, dict[str, dict[str, Any]]] | None:
        """``(choice, details)`` of :meth:`selected`: per method its criterion ``mean``
        and, against the reference, ``advantage``, ``se`` and ``significant``."""
        name = criterion or self.selection
        if name is None:
            return None
        if name not in self.criteria:
            raise KeyError(f"criterion {name!r} was not scored; this board has "
                           f"{list(self.criteria)}.")
        terms = {m: t for m in self.candidates if (t := self.terms(m, name)) is not None}
        if not terms:
            return None
        if reference is not None and reference not in terms:
            reference = None
        return paired_choice(terms, greater_is_better=self.criteria[name],
                             reference=reference, confidence=confidence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``task``, ``metric``, ``n_eval``, ``best``, ``selection`` and
        ``selected``, ``methods`` (name -> row) and ``results`` (per seed)."""
        return {
            "selection": self.selection,
            "selected": self.selected(),
            "task": self.task,
            "metric": self.metric,
            "n_eval": self.n_eval,
            "seeds": list(self.seeds),
            "best": self.best(),
            "methods": {r["method"]: {k: v for k, v in r.items() if k != "method"}
                        for r in self.rows},
            "results": [{k: v for k, v in r.items()
                         if not k.endswith("terms") and k != "target_proba"}
                        for r in self.results],
        }

    def to_frame(self):
        """The rows as a :class:`pandas.DataFrame` indexed by method."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("method")

    def __str__(self) -> str:
        return format_table(self)

    def _repr_html_(self) -> str:  # notebooks
        return self.to_frame()._repr_html_()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(board: Leaderboard, max_error: int = 60) -> str:
    """A plain-text table of ``board``: score mean ± std, fit time, seeds, error."""
    label = "target acc" if board.task == CLASSIFICATION else "target R²"
    header = ["method", label, "fit s", "seeds", "error"]
    if board.task != CLASSIFICATION:
        header.insert(2, "MSE")
    lines = [header]
    for r in board.rows:
        mean, std = r[board.score_key], r[board.std_key]
        score = "-" if mean is None else f"{mean:.3f}" + (  # one seed: no spread to show
            f" ± {std:.3f}" if r["n_seeds"] > 1 else "")
        err = (r["error"] or "")
        err = err if len(err) <= max_error else err[: max_error - 1] + "…"
        row = [r["method"], score, _fmt(r["fit_seconds"], 2), str(r["n_seeds"]), err]
        if board.task != CLASSIFICATION:
            row.insert(2, _fmt(r["mse_mean"], 4))
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    note = (f"scored on {board.n_eval} labelled target samples" if board.n_eval
            else "no target labels to score on")
    return "\n".join(text + [f"({note})"])


# --------------------------------------------------------------------------- jobs
def _fresh(estimator: Any) -> Any:
    """An unfitted copy: sklearn ``clone`` when it applies, a deep copy otherwise."""
    if hasattr(estimator, "get_params"):
        try:
            return clone(estimator)
        except TypeError:
            pass
    return copy.deepcopy(estimator)


def _param_names(cls: type) -> set[str]:
    getter = getattr(cls, "_get_param_names", None)
    if getter is not None:
        return set(getter())
    return {p for p in inspect.signature(cls.__init__).parameters if p != "self"}


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _score(model: Any, task: str, X_eval: np.ndarray, y_eval: np.ndarray
           ) -> tuple[float | None, float | None, np.ndarray | None]:
    """(accuracy or R², MSE or None, per-row terms whose mean is the score) of ``model``
    on the evaluation rows."""
    if X_eval.shape[0] == 0:
        return None, None, None
    pred = np.asarray(model.predict(X_eval))
    if task == CLASSIFICATION:
        # Elementwise equality tolerates 1 vs 1.0 (labels read from a table with blanks).
        terms = (pred == y_eval).astype(np.float64)
        return float(terms.mean()), None, terms
    from sklearn.metrics import mean_squared_error, r2_score

    y = y_eval.astype(np.float64)
    return (float(r2_score(y, pred)), float(mean_squared_error(y, pred)),
            _r2_terms(y, pred))


def _run_job(name: str, seed: int, model: Any, Xs: Any, ys: Any, Xt: Any, yt: Any,
             X_eval: np.ndarray, y_eval: np.ndarray, task: str, fit_params: dict[str, Any],
             keep_model: bool, selection: tuple | None = None,
             proba_rows: np.ndarray | None = None) -> dict[str, Any]:
    """Fit and score one (method, seed); never raises for a failing method.

    ``selection`` is ``(criteria, Xs_val, ys_val)``: the label-free scores of the fitted
    model on held-out source rows and the target (``Xs``/``ys`` are then the rest).
    ``eval_terms`` and ``selection_terms`` hold the per-row terms behind the scores, so
    two methods can be compared row by row (paired)."""
    out: dict[str, Any] = {"method": name, "seed": seed, "score": None, "mse": None,
                           "fit_seconds": None, "error": None, "warnings": [],
                           "selection_score": None, "selection_scores": {},
                           "selection_terms": {}, "eval_terms": None, "target_proba": None}
    # Warnings are kept with the result instead of flooding the console from workers;
    # catch_warnings swaps process-global state, so only where no other job shares it
    # (sequential runs and worker processes run jobs in their main thread).
    capture = threading.current_thread() is threading.main_thread()
    with warnings.catch_warnings(record=True) if capture else contextlib.nullcontext() as caught:
        if capture:
            warnings.simplefilter("always")
        try:
            start = time.perf_counter()
            model.fit(Xs, ys, Xt, yt, **fit_params)
            out["fit_seconds"] = time.perf_counter() - start
            out["score"], out["mse"], out["eval_terms"] = _score(
                model, getattr(model, "task_", task), X_eval, y_eval)
            if selection is not None:
                crits, Xs_val, ys_val = selection
                for crit in crits:
                    try:
                        terms = np.asarray(crit.pointwise(model, Xs_val, ys_val, Xt,
                                                          Xs_train=Xs, ys_train=ys, yt=yt),
                                           dtype=np.float64)
                    except Exception as exc:  # noqa: BLE001 - the fit stands without it
                        out.setdefault("selection_error", f"{crit.name}: {_one_line(exc)}")
                        continue
                    out["selection_terms"][crit.name] = terms
                    out["selection_scores"][crit.name] = float(terms.mean())
                out["selection_score"] = out["selection_scores"].get(crits[0].name)
            if proba_rows is not None and hasattr(model, "predict_proba"):
                Xp = Xt.iloc[proba_rows] if hasattr(Xt, "iloc") else np.asarray(Xt)[proba_rows]
                out["target_proba"] = np.asarray(model.predict_proba(Xp), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - one failing method must not stop the rest
            out["error"] = _one_line(exc)
            keep_model = False
    out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught or ()})
    out["model"] = model if keep_model else None
    return out


def _iter_parallel(tasks: list, n_jobs: int | None) -> Iterator[dict[str, Any]]:
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:  # backends without generators (multiprocessing): all at the end
        parallel = Parallel(n_jobs=n_jobs)
    yield from parallel(tasks)


# --------------------------------------------------------------------------- compare
def _resolve(methods: Any) -> list[MethodInfo]:
    if isinstance(methods, (str, MethodInfo)):
        methods = [methods]
    infos: list[MethodInfo] = []
    for m in methods:
        info = m if isinstance(m, MethodInfo) else get_method(str(m))
        if info.name not in [i.name for i in infos]:
            infos.append(info)
    if not infos:
        raise InputError("no methods to compare; pass at least one name from "
                         "`transferkit methods`.")
    return infos


def _check_seeds(seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = range(int(seeds))
    out = [int(s) for s in seeds]
    if not out:
        raise InputError("seeds is empty; pass at least one seed, e.g. seeds=(0, 1, 2).")
    if len(set(out)) != len(out):
        raise InputError(f"seeds repeat ({out}); each seed should appear once.")
    return out


def _summarise(name: str, res: list[dict[str, Any]], task: str) -> dict[str, Any]:
    ok = [r for r in res if r["error"] is None]
    scores = [r["score"] for r in ok if r["score"] is not None]
    errors = [r["error"] for r in res if r["error"] is not None]

    def mean_std(values: list[float]) -> tuple[float | None, float | None]:
        if not values:
            return None, None
        # Sample std (ddof=1): an honest spread for a handful of seeds; 0 for one seed.
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return float(np.mean(values)), std

    mean, std = mean_std(scores)
    row: dict[str, Any] = {"method": name}
    if task == CLASSIFICATION:
        row.update(target_accuracy_mean=mean, target_accuracy_std=std)
    else:
        mse_mean, mse_std = mean_std([r["mse"] for r in ok if r["mse"] is not None])
        row.update(r2_mean=mean, r2_std=std, mse_mean=mse_mean, mse_std=mse_std)
    sel = [r["selection_score"] for r in ok if r.get("selection_score") is not None]
    if sel:
        row["selection_score_mean"], row["selection_score_std"] = mean_std(sel)
    by_crit: dict[str, list[float]] = {}
    for r in ok:
        for crit, value in r.get("selection_scores", {}).items():
            by_crit.setdefault(crit, []).append(value)
    if by_crit:
        row["selection_scores"] = {c: float(np.mean(v)) for c, v in by_crit.items()}
    times = [r["fit_seconds"] for r in ok]
    row["fit_seconds"] = float(np.mean(times)) if times else None
    row["n_seeds"] = len(ok)
    row["error"] = None if not errors else (
        errors[0] if len(errors) == len(res) else f"{len(errors)}/{len(res)} seeds: {errors[0]}")
    return row


def compare(
    methods: Sequence[str | MethodInfo] | str,
    Xs: Any,
    ys: Any,
    Xt: Any,
    yt: Any = None,
    *,
    y_eval: Any = None,
    estimator: Any = None,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int | Iterable[int] = (0, 1, 2, 3, 4),
    n_jobs: int | None = None,
    progress: bool = True,
    fit_params: Mapping[str, Any] | None = None,
    selection: Any = None,
    selection_holdout: float = 0.25,
) -> Leaderboard:
    """Fit every method with every seed and rank them on held-out target labels.

    Parameters
    ----------
    methods : list of str or MethodInfo
        Registered method names (see ``transferkit.methods()``), or their infos.
    Xs, ys : array-like
        Labelled source data.
    Xt : array-like
        Target features.
    yt : array-like, optional
        Target labels given to the methods for training; NaN (or None) marks unlabelled
        rows.
    y_eval : array-like of shape (n_target,), optional
        Held-out target labels used **only** to score (never passed to ``fit``); NaN /
        None where unknown. Without it the leaderboard has no scores.
    estimator : estimator, optional
        Base learner; each job gets its own unfitted copy. Passed only to methods that
        take an ``estimator``; ``None`` keeps each method's default.
    method_params : dict, optional
        Method name -> extra constructor parameters, e.g.
        ``{"KLIEP": {"sigmas": [0.1, 1, 10]}}``.
    seeds : int or iterable of int, default=(0, 1, 2, 3, 4)
        ``random_state`` of each repetition (an int ``n`` means ``range(n)``).
    n_jobs : int, optional
        Parallel jobs (joblib semantics; ``None`` follows ``joblib.parallel_config``).
    progress : bool, default=True
        Show a progress bar over jobs.
    fit_params : dict, optional
        Extra keyword arguments for every ``fit`` call.
    selection : str, SelectionCriterion or list of them, optional
        Label-free criteria (``"iwcv"``, ``"dev"``, ``"reverse"``, ``"entropy"``,
        ``"snd"``, ``"atc"``, ``"mixval"``; ``"target_cv"`` with target labels; see
        :mod:`transferkit.selection.criteria`); the first is the primary one. Every method
        is then fitted on 1 − ``selection_holdout`` of the source (a stratified split drawn
        with the first seed) and scored by each criterion on the held-out source rows and
        the target; the leaderboard gains ``selection_score_mean`` / ``_std`` (primary),
        ``selection_scores`` (all), the per-row terms (:meth:`Leaderboard.terms`) and
        :meth:`Leaderboard.selected`. With classification and several seeds it also
        scores ``"ensemble_entropy"`` (entropy of the seed-averaged target probabilities).
    selection_holdout : float, default=0.25
        Fraction of the source held out for the criteria; 0 holds none out (only the
        criteria that need no source labels: entropy, SND, target CV).

    Returns
    -------
    Leaderboard

    Raises
    ------
    UnknownMethodError
        A name is not registered (raised before any fitting).
    UnsupportedTaskError, MissingTargetLabelsError, InputError
        A method cannot run on this problem, or the data or parameters are invalid.

    Examples
    --------
    >>> import transferkit as tk
    >>> from transferkit.selection import compare
    >>> Xs, ys, Xt, yt = tk.datasets.make_two_moons_shift()
    >>> board = compare(["SourceOnly"], Xs, ys, Xt, y_eval=yt, seeds=2, progress=False)
    >>> board.best()
    'SourceOnly'
    """
    infos = _resolve(methods)
    seed_list = _check_seeds(seeds)
    params_by_name = _check_method_params(method_params, infos)
    fit_params = dict(fit_params or {})

    # Validate the data once, up front: a bad input is the user's to fix, not a row.
    data = check_domains(Xs, ys, Xt, yt, estimator=estimator)
    task = data.task
    for info in infos:
        if task not in info.tasks:
            raise UnsupportedTaskError(
                f"{info.name} handles {' and '.join(info.tasks)}, not {task}; drop it or see "
                f"transferkit.methods(task={task!r}).")
        if info.needs_target_labels and not data.n_labeled:
            raise MissingTargetLabelsError(
                f"{info.name} needs labelled target samples: pass yt (NaN for unlabelled "
                "rows) or drop it from the comparison.")

    X_eval, y_eval_known = _eval_rows(Xt, y_eval)
    crits, sel = None, None
    if selection is not None:
        crits, Xs, ys, sel = _selection_split(selection, selection_holdout, data, Xs, ys, task,
                                             seed_list[0])

    proba_rows = None
    if crits is not None and task == CLASSIFICATION:  # ensemble entropy, collapse check
        n_t = data.Xt.shape[0]
        proba_rows = (np.arange(n_t) if n_t <= MAX_PROBA_ROWS else np.sort(
            np.random.default_rng(seed_list[0]).choice(n_t, MAX_PROBA_ROWS, replace=False)))
    tasks, first = [], seed_list[0]
    # Torch methods first: the long jobs start early and the short ones fill the gaps,
    # instead of one worker finishing a long job alone at the end.
    for info in sorted(infos, key=lambda i: i.backend != "torch"):
        accepted = _param_names(info.cls)
        for seed in seed_list:
            params: dict[str, Any] = {}
            if estimator is not None and "estimator" in accepted:
                params["estimator"] = _fresh(estimator)
            if "random_state" in accepted:
                params["random_state"] = seed
            params.update(copy.deepcopy(params_by_name.get(info.name, {})))
            try:
                model = info.create(**params)
            except TypeError as exc:  # a misspelt hyper-parameter: the user's to fix
                raise InputError(
                    f"{info.name} does not accept these parameters ({exc}); it takes "
                    f"{', '.join(sorted(accepted))}.") from None
            tasks.append(delayed(_run_job)(info.name, seed, model, Xs, ys, Xt, yt, X_eval,
                                           y_eval_known, task, fit_params, seed == first,
                                           sel, proba_rows))

    results: list[dict[str, Any]] = []
    bar = _progress_bar(len(tasks), progress)
    try:
        for res in _iter_parallel(tasks, n_jobs):
            results.append(res)
            if bar is not None:
                bar.update(1)
                if res["error"] is not None:
                    bar.write(f"{res['method']} (seed {res['seed']}) failed: {res['error']}",
                              file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
    board = _leaderboard(infos, seed_list, results, task, X_eval.shape[0])
    if crits is not None:
        board.criteria = {c.name or type(c).__name__: bool(c.greater_is_better) for c in crits}
        board.selection = next(iter(board.criteria))
        if proba_rows is not None and len(seed_list) > 1:  # an ensemble needs two seeds
            board.criteria[ENSEMBLE_ENTROPY] = False
    return board


def _selection_split(selection: Any, holdout: float, data: Any, Xs: Any, ys: Any, task: str,
                     seed: int) -> tuple[list, Any, Any, tuple]:
    """The criteria, the source rows to fit on, and ``(criteria, Xs_val, ys_val)``.

    ``data`` is the validated problem (its arrays serve the split and the weights); the
    rows handed on are the caller's own (a DataFrame keeps its columns, labels their
    values)."""
    from sklearn.model_selection import train_test_split

    from .criteria import get_criterion

    many = isinstance(selection, (list, tuple))
    crits = [get_criterion(c) for c in (selection if many else [selection])]
    if not crits:
        raise InputError("selection is an empty list; pass a criterion name such as 'iwcv'.")
    names = [c.name or type(c).__name__ for c in crits]
    if len(set(names)) != len(names):
        raise InputError(f"selection names a criterion twice ({names}).")
    if not 0.0 <= float(holdout) < 1.0:
        raise InputError(f"selection_holdout must be in [0, 1), got {holdout}.")
    if float(holdout) == 0.0:
        needy = [c.name for c in crits if c.name in NEED_SOURCE_ROWS]
        if needy:
            raise InputError(f"{', '.join(needy)} need held-out source rows; set "
                             "selection_holdout above 0 or use 'entropy', 'snd', 'mixval' or "
                             "'target_cv'.")
        return crits, Xs, ys, (crits, None, None)
    codes = np.asarray(data.ys)
    strat = codes if task == CLASSIFICATION and np.bincount(codes).min() >= 2 else None
    fit_idx, val_idx = train_test_split(np.arange(len(codes)), test_size=float(holdout),
                                        random_state=seed, stratify=strat)
    for crit in crits:
        if hasattr(crit, "weights"):  # density-ratio weights depend on the data only: once
            crit.weights(data.Xs[val_idx], data.Xt)
    rows = (lambda i: Xs.iloc[i]) if hasattr(Xs, "iloc") else (lambda i: data.Xs[i])
    ys_raw = np.asarray(ys)
    return crits, rows(fit_idx), ys_raw[fit_idx], (crits, rows(val_idx), ys_raw[val_idx])


def _check_method_params(method_params: Mapping[str, Mapping[str, Any]] | None,
                         infos: list[MethodInfo]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, params in (method_params or {}).items():
        info = get_method(key)  # a misspelt name fails here, before any work
        if not isinstance(params, Mapping):
            raise InputError(f"method_params[{key!r}] must be a dict of parameters, got "
                             f"{type(params).__name__}.")
        out[info.name] = dict(params)
    return out


def _eval_rows(Xt: Any, y_eval: Any) -> tuple[np.ndarray, np.ndarray]:
    """The target rows with a known evaluation label, and those labels."""
    Xt_arr = check_X(Xt, "Xt (target features)")
    if y_eval is None:
        return Xt_arr[:0], np.empty(0)
    y = check_y(y_eval, Xt_arr.shape[0], "y_eval (evaluation labels)", allow_missing=True)
    known = ~_missing_mask(y)
    return Xt_arr[known], y[known]


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="comparing methods", unit="fit", leave=False)


def _leaderboard(infos: list[MethodInfo], seeds: list[int], results: list[dict[str, Any]],
                 task: str, n_eval: int) -> Leaderboard:
    order = {info.name: i for i, info in enumerate(infos)}
    seed_pos = {s: i for i, s in enumerate(seeds)}
    # Workers finish in any order; sort so the leaderboard is deterministic.
    results.sort(key=lambda r: (order[r["method"]], seed_pos[r["seed"]]))
    models: dict[str, Any] = {}
    for r in results:
        model = r.pop("model")
        if model is not None:
            models.setdefault(r["method"], model)
    rows = [_summarise(info.name, [r for r in results if r["method"] == info.name], task)
            for info in infos]
    key = "target_accuracy_mean" if task == CLASSIFICATION else "r2_mean"

    def rank(row: dict[str, Any]) -> tuple[int, float, int]:
        score = row[key]
        missing = score is None or math.isnan(score)
        return (1 if missing else 0, 0.0 if missing else -score, order[row["method"]])

    rows.sort(key=rank)
    return Leaderboard(task=task, rows=rows, results=results, models=models, n_eval=n_eval,
                       seeds=list(seeds))
