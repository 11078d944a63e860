"""The ``transferkit`` command.

``transferkit run`` compares methods and writes a report (the seed's Two Moons demo with
no data); ``methods`` lists the registry; ``fit`` trains one method and saves it;
``predict`` applies a saved model to a table. User errors print one line
``error: <message>`` on stderr and exit with code 2 (set ``TRANSFERKIT_DEBUG=1`` for the
traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import InputError, TransferkitError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning that tells you whether it helped.")

USER_ERROR = 2


def _usage_error_types() -> tuple[type[BaseException], ...]:
    # Typer >= 0.26 vendors click; older versions use click itself.
    try:
        from typer.exceptions import TyperException

        return (TyperException,)
    except ImportError:  # pragma: no cover - older typer
        import click

        return (click.ClickException,)


def _echo(text: str) -> None:
    typer.echo(text)


# --------------------------------------------------------------------------- run
@app.command()
def run(
    source: Annotated[Path | None, typer.Option(
        help="Source table (CSV or Parquet) or image folder (a subfolder per class).")] = None,
    target: Annotated[Path | None, typer.Option(
        help="Target table (CSV or Parquet) or image folder.")] = None,
    label: Annotated[str | None, typer.Option(help="Label column name.")] = None,
    text_column: Annotated[str | None, typer.Option(
        help="Text column: encode it with a pretrained sentence encoder.")] = None,
    encoder: Annotated[str | None, typer.Option(
        help="Pretrained encoder for text or images (default all-MiniLM-L6-v2 / "
             "efficientnet-lite0).")] = None,
    output: Annotated[Path, typer.Option(help="Report folder.")] = Path("transferkit-output"),
    methods: Annotated[str | None, typer.Option(
        help="Comma-separated method names (SourceOnly is always added).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Repetitions with seeds 0..N-1.")] = 3,
    estimator: Annotated[str, typer.Option(
        help="Base learner: auto, mlp, linear or boosting.")] = "auto",
    target_train_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0,
        help="Fraction of labelled target rows given to the methods for training.")] = 0.0,
    jobs: Annotated[int | None, typer.Option(help="Parallel fits (default: CPUs).")] = None,
    cautious: Annotated[bool, typer.Option(
        "--cautious",
        help="Leave source-only only for a method clearly better on two label-free "
             "criteria (safer without target labels, less gain on average; with "
             "--target-train-fraction the labels choose instead).")] = False,
    ignore: Annotated[str | None, typer.Option(
        help="Comma-separated table columns that are not features (identifiers, notes); "
             "columns named id, index or row_id are always left out.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compare the methods that fit the data and write an HTML report.

    With no --source/--target, runs the seed tutorial's Two Moons problem.
    """
    from .pipeline import execute

    names = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    result = execute(output, source, target, label, methods=names, seeds=seeds,
                     estimator=estimator, target_train_fraction=target_train_fraction,
                     n_jobs=jobs, progress=not quiet, text_column=text_column,
                     encoder=encoder, cautious=cautious, ignore=ignore)
    summary = result.summary
    for warning in summary.get("warnings", []):
        _echo(f"warning: {warning}")
    _echo(str(result.leaderboard))
    _echo("")
    verdict = summary["verdict"]
    _echo(verdict["headline"])
    for reason in verdict["reasons"]:
        _echo(f"  - {reason}")
    delivered, chosen = summary.get("delivered_method"), summary.get("selected_method")
    if delivered and chosen and delivered != chosen:
        _echo(f"saved: {delivered}'s model and predictions (the verdict's advice; the "
              f"label-free choice was {chosen})")
    if summary["data"].get("ignored_columns"):
        _echo(f"not used as features: {', '.join(summary['data']['ignored_columns'])}")
    by_reason: dict[str, list[str]] = {}
    for name, reason in summary.get("skipped", {}).items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():  # one line per reason, not per method
        _echo(f"not run ({reason}): {', '.join(names)}")
    _echo(f"report: {(result.output / 'index.html').resolve()}")


# --------------------------------------------------------------------------- methods
@app.command("methods")
def list_methods(
    family: Annotated[str | None, typer.Option(help="instance, feature, ...")] = None,
    task: Annotated[str | None, typer.Option(help="classification or regression")] = None,
    setting: Annotated[str | None, typer.Option(help="unsupervised, semi-supervised, ...")
                       ] = None,
) -> None:
    """List the registered methods (name, family, settings, tasks, backend)."""
    from .registry import FAMILIES, SETTINGS, methods

    for value, allowed, what in ((family, FAMILIES, "family"), (setting, SETTINGS, "setting"),
                                 (task, ("classification", "regression"), "task")):
        if value is not None and value not in allowed:
            raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}.")
    found = methods(family=family, setting=setting, task=task)
    _echo(repr(found) if found else "no registered method matches these filters.")


# --------------------------------------------------------------------------- fit
def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (``sigmas=[0.1,1,10]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--param {pair!r} is not key=value, e.g. --param sigmas=[0.1,1,10].")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a plain string such as kernel=rbf
    return out


@app.command()
def diagnose(
    source: Annotated[Path, typer.Option(help="Source table (CSV or Parquet).")],
    target: Annotated[Path, typer.Option(help="Target table (CSV or Parquet).")],
    label: Annotated[str | None, typer.Option(
        help="Label column (enables label-shift estimation and the error bound).")] = None,
    permutations: Annotated[int, typer.Option(min=1, help="MMD permutations.")] = 200,
    text_column: Annotated[str | None, typer.Option(
        help="Text column: diagnose its sentence embeddings instead of the other columns.")
    ] = None,
    encoder: Annotated[str | None, typer.Option(
        help="Sentence encoder for --text-column (default all-MiniLM-L6-v2).")] = None,
    ignore: Annotated[str | None, typer.Option(
        help="Comma-separated columns that are not features (identifiers, notes).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the report as JSON here.")] = None,
) -> None:
    """How the target differs from the source: drift per column, MMD test, divergences."""
    import numpy as np

    from .datasets.tables import load_table
    from .diagnostics import diagnose as run_diagnose
    from .pipeline import check_text_column, encode_texts, excluded_columns

    src, tgt = load_table(source), load_table(target)
    names = [c.strip() for c in ignore.split(",") if c.strip()] if ignore else None
    drop, _ = excluded_columns((src, tgt), names, label)
    src, tgt = (f.drop(columns=[c for c in drop if c in f.columns]) for f in (src, tgt))
    ys = yt = None
    if label is not None:
        if label not in src.columns:
            raise InputError(f"the source table has no label column {label!r}; its columns "
                             f"are {list(src.columns)}.")
        ys = src.pop(label).to_numpy()
        yt = tgt.pop(label).to_numpy() if label in tgt.columns else None
        if yt is not None and yt.dtype.kind == "f" and np.isnan(yt).all():
            yt = None
    if text_column is not None:
        import pandas as pd

        check_text_column((src, tgt), text_column)
        embedded, name = encode_texts((src, tgt), text_column, encoder)
        src, tgt = (pd.DataFrame(Z).add_prefix(f"{name}[").add_suffix("]") for Z in embedded)
    missing = sorted(set(src.columns) ^ set(tgt.columns))
    if missing:
        raise InputError(f"source and target need the same feature columns; only one has "
                         f"{', '.join(map(str, missing))} (--ignore leaves columns out).")
    report = run_diagnose(src, tgt[list(src.columns)], ys, yt, n_permutations=permutations)
    _echo(str(report))
    if json_out is not None:
        json_out.write_text(report.to_json() + "\n", encoding="utf-8")


@app.command()
def fit(
    method: Annotated[str, typer.Option(help="Registered method name.")],
    source: Annotated[Path, typer.Option(help="Source table (CSV or Parquet).")],
    target: Annotated[Path, typer.Option(help="Target table (CSV or Parquet).")],
    label: Annotated[str, typer.Option(help="Label column name.")],
    output: Annotated[Path, typer.Option(help="Folder to save the model in.")],
    param: Annotated[list[str] | None, typer.Option(
        help="Method parameter key=value (JSON values), repeatable.")] = None,
    estimator: Annotated[str | None, typer.Option(
        help="Base learner: mlp, linear or boosting (default: the method's own).")] = None,
    seed: Annotated[int, typer.Option(help="random_state.")] = 0,
) -> None:
    """Fit one method on a source and a target table and save it.

    Labelled target rows (non-empty label cells) are given to the method as target labels.
    """
    import pandas as pd

    from .datasets.tables import load_table, split_domains
    from .registry import get_method

    info = get_method(method)
    params = _parse_params(param or [])
    src, tgt = load_table(source), load_table(target)
    Xs, ys, Xt, yt, names = split_domains(src, tgt, label)
    accepted = set(info.cls._get_param_names()) if hasattr(info.cls, "_get_param_names") else set()
    if estimator is not None:
        if "estimator" not in accepted:
            raise InputError(f"{info.name} takes no base estimator; drop --estimator.")
        from ._validation import infer_task
        from .pipeline import make_estimator

        params.setdefault("estimator", make_estimator(estimator, infer_task(ys)))
    if "random_state" in accepted:
        params.setdefault("random_state", seed)
    unknown = sorted(set(params) - accepted) if accepted else []
    if unknown:
        raise InputError(f"{info.name} has no parameter {', '.join(unknown)}; it takes "
                         f"{', '.join(sorted(accepted))}.")
    model = info.create(**params)
    yt_arg = yt if pd.notna(pd.Series(yt)).any() else None
    # DataFrames carry the encoded column names into the model, so predict can re-encode.
    model.fit(pd.DataFrame(Xs, columns=names), ys, pd.DataFrame(Xt, columns=names), yt_arg)
    model.save(str(output))
    n_lab = 0 if yt_arg is None else int(pd.notna(pd.Series(yt)).sum())
    _echo(f"fitted {info.name} on {len(ys)} source rows and {len(yt)} target rows "
          f"({n_lab} labelled); saved to {output}")


# --------------------------------------------------------------------------- predict
@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Folder written by `transferkit fit`.")],
    data: Annotated[Path, typer.Option(help="Table to predict (CSV or Parquet).")],
    output: Annotated[Path, typer.Option(help="Predictions file (.csv or .parquet).")],
    id_column: Annotated[str | None, typer.Option(
        help="Column to copy into the output (default: an id/index column, else the row "
             "number).")] = None,
) -> None:
    """Predict a table with a saved model: a prediction column (+ proba_<class> columns)."""
    import numpy as np
    import pandas as pd

    from . import load
    from .datasets.tables import encode_features, guess_id_column, load_table

    if output.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise InputError(f"--output {str(output)!r} must end in .csv or .parquet.")
    fitted = load(str(model))
    df = load_table(data)
    names = getattr(fitted, "feature_names_in_", None)
    if names is not None:
        X = encode_features(df, list(names))
    else:  # fitted from arrays: every numeric column, in order
        X = df.select_dtypes("number").to_numpy(np.float64)
    id_col = id_column or guess_id_column(df)
    if id_col is not None and id_col not in df.columns:
        raise InputError(f"--id-column {id_col!r} is not a column of {str(data)!r}.")
    out = pd.DataFrame({id_col: df[id_col].to_numpy()} if id_col else {"row": np.arange(len(df))})
    out["prediction"] = fitted.predict(X)
    if getattr(fitted, "task_", None) == "classification" and hasattr(fitted, "predict_proba"):
        proba = fitted.predict_proba(X)
        for j, c in enumerate(fitted.classes_):
            out[f"proba_{c}"] = proba[:, j]
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    if output.suffix.lower() == ".csv":
        out.to_csv(tmp, index=False)
    else:
        out.to_parquet(tmp, index=False)
    os.replace(tmp, output)  # never a half-written predictions file
    _echo(f"wrote {len(out)} predictions to {output}")


# --------------------------------------------------------------------------- main
def _one_line(exc: BaseException) -> str:
    if hasattr(exc, "format_message"):
        msg = exc.format_message()
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        msg = f"{exc.strerror}: {exc.filename}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(str(msg).split())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``transferkit`` console script."""
    user_errors = (TransferkitError, ValueError, OSError, *_usage_error_types())
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # No arguments: the help, as a successful call (not a usage error).
        code = app(args=args or ["--help"], prog_name="transferkit", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except user_errors as exc:
        if os.environ.get("TRANSFERKIT_DEBUG"):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(USER_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
