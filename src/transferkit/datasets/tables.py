"""Tables (CSV / Parquet) as source and target domains.

:func:`load_table` reads a file; :func:`split_domains` turns a source and a target table
into ``Xs, ys, Xt, yt`` with one feature encoding shared by both domains, and
:func:`encode_features` applies that encoding to new data (for ``predict``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FeatureMismatchError, InputError, MissingColumnError

__all__ = ["load_table", "split_domains", "split_labels", "encode_features", "guess_id_column",
           "suspicious_columns", "TABLE_SUFFIXES"]

#: suffix -> reader; ``.gz`` etc. are handled by pandas for CSV.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
#: columns with these names (any case) identify rows; they are never features.
ID_NAMES = ("id", "index", "row_id")
#: separator of one-hot column names: ``colour=red``.
ONE_HOT_SEP = "="


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"cannot read {str(path)!r}: unknown file type {suffix or '(no suffix)'!r}; use "
            f"one of {', '.join(TABLE_SUFFIXES)}.")
    return suffix


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file, chosen by its suffix.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` / ``.tsv`` (optionally compressed, e.g. ``.csv.gz``), ``.parquet`` or
        ``.pq``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    InputError
        Unknown suffix, an empty or unreadable file, or Parquet without pyarrow.
    """
    p = Path(path)
    kind = _kind(p)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    if p.is_dir():
        raise InputError(f"{str(p)!r} is a folder; pass a {'/'.join(TABLE_SUFFIXES)} file.")
    try:
        if kind in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="\t" if kind == ".tsv" else ",")
    except ImportError as exc:
        raise InputError(f"reading Parquet needs pyarrow ({exc}); `pip install pyarrow` or "
                         "save the table as CSV.") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{str(p)!r} is empty; it needs a header row and data.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(p)!r}: {' '.join(str(exc).split())}") from None
    if df.shape[0] == 0:
        raise InputError(f"{str(p)!r} has a header but no rows.")
    df.columns = [str(c) for c in df.columns]
    return df


def guess_id_column(df: pd.DataFrame) -> str | None:
    """The first column named ``id``, ``index`` or ``row_id`` (any case), if any."""
    for col in df.columns:
        if str(col).lower() in ID_NAMES:
            return str(col)
    return None


def suspicious_columns(frames: Sequence[pd.DataFrame], columns: Sequence[str],
                       min_rows: int = 20) -> list[str]:
    """Warnings about feature ``columns`` that probably are not features.

    A column of integers or text with a different value in every row of each table (of
    at least ``min_rows`` rows) looks like an identifier: a model fitted on it learns
    nothing that carries to new rows. A text column with distinct values in more than
    half the rows is free text or a near-identifier, which one-hot encoding cannot use.
    """
    out = []
    for col in columns:
        series = [f[col] for f in frames if col in f.columns]
        if not series or min(len(x) for x in series) < min_rows:
            continue
        text = not any(_is_numeric(x) for x in series)
        if not text and not all(pd.api.types.is_integer_dtype(x) for x in series):
            continue  # real-valued measurements are distinct on every row by nature
        if all(x.nunique(dropna=True) == len(x) for x in series):
            out.append(f"column {col!r} has a different value in every row, like an "
                       f"identifier; if it is one, leave it out (--ignore {col}).")
        elif text and all(x.nunique(dropna=True) > len(x) / 2 for x in series):
            out.append(f"column {col!r} has distinct text in most rows, which one-hot "
                       f"encoding cannot use: if it is free text pass --text-column {col}, "
                       f"else leave it out (--ignore {col}).")
    return out


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _numeric(s: pd.Series, col: str, domain: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(np.float64).to_numpy()
    values = pd.to_numeric(s, errors="coerce").astype(np.float64).to_numpy()
    bad = np.isnan(values) & s.notna().to_numpy()
    if bad.any():
        first = s[bad].iloc[0]
        raise InputError(f"column {col!r} is numeric in one domain but the {domain} has the "
                         f"non-number {first!r}; fix the value or make the column text in both.")
    missing = np.isnan(values)
    if missing.any():
        raise InputError(f"feature column {col!r} has {int(missing.sum())} empty cells in the "
                         f"{domain}; impute or drop them first.")
    return values


def _labels(s: pd.Series) -> np.ndarray:
    """Labels as a 1-D array; missing cells become NaN.

    Integer labels with blanks stay integers (in an object array), so classes read
    ``0, 1`` rather than ``0.0, 1.0`` (pandas reads such a column as float).
    """
    missing = s.isna().to_numpy()
    if _is_numeric(s):
        if not missing.any():
            return s.to_numpy()
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        known = values[~missing]
        if not np.all(known == np.round(known)):
            return values
        out = np.full(values.shape[0], np.nan, dtype=object)
        out[~missing] = known.astype(np.int64)
        return out
    return s.astype(object).where(~missing, np.nan).to_numpy(dtype=object)


def _check_label_column(source_df: pd.DataFrame, label: str) -> None:
    if label not in source_df.columns:
        raise MissingColumnError(
            f"the source has no column {label!r}; its columns are "
            f"{', '.join(map(str, source_df.columns))}. Pass the label column's name.")


def split_labels(source_df: pd.DataFrame, target_df: pd.DataFrame, label: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The label columns ``ys, yt`` of a source and a target table.

    The source must hold ``label`` in every row; the target may lack the column (all
    unlabelled) or leave cells empty (NaN). Raises :class:`MissingColumnError` or
    :class:`InputError` saying how to fix the table.
    """
    _check_label_column(source_df, label)
    ys = _labels(source_df[label])
    n_missing = int(pd.isna(source_df[label]).sum())
    if n_missing:
        raise InputError(f"the source label column {label!r} has {n_missing} empty cells; "
                         "every source row needs a label (drop those rows).")
    if label in target_df.columns:
        yt = _labels(target_df[label])
        if ys.dtype.kind in "biu" and yt.dtype.kind == "f":
            ys = ys.astype(np.float64)  # real-valued target labels: real-valued source too
    else:
        yt = np.full(target_df.shape[0], np.nan)
    return ys, yt


def split_domains(source_df: pd.DataFrame, target_df: pd.DataFrame, label: str, *,
                  ignore: Sequence[str] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Features and labels of a source and a target table, encoded the same way.

    Parameters
    ----------
    source_df, target_df : pandas.DataFrame
        One row per sample. The source must hold ``label``; in the target it is
        optional, and an empty cell marks an unlabelled row.
    label : str
        Name of the label column.
    ignore : list of str, optional
        Columns that are not features (e.g. ids). ``None`` ignores a column named
        ``id``, ``index`` or ``row_id`` (any case).

    Returns
    -------
    Xs, ys, Xt, yt : ndarray
        Float features and labels; ``yt`` is all-NaN when the target has no labels.
    feature_names : list of str
        Column names of ``Xs`` / ``Xt``. Non-numeric columns are one-hot encoded over the
        categories seen in either domain, as ``column=value`` (a missing category is
        all zeros).

    Raises
    ------
    MissingColumnError
        ``label`` is not a column of the source.
    FeatureMismatchError
        A feature column exists in one domain only.
    InputError
        Empty source labels or feature cells, or a column mixing numbers and text.
    """
    _check_label_column(source_df, label)
    source_df, target_df = _str_columns(source_df), _str_columns(target_df)
    if ignore is None:
        ignore = [c for c in (guess_id_column(source_df), guess_id_column(target_df)) if c]
    skip = {label, *ignore}
    src_cols = [c for c in source_df.columns if c not in skip]
    tgt_cols = [c for c in target_df.columns if c not in skip]
    only_src = [c for c in src_cols if c not in tgt_cols]
    only_tgt = [c for c in tgt_cols if c not in src_cols]
    if only_src or only_tgt:
        parts = []
        if only_src:
            parts.append(f"the target lacks {', '.join(map(repr, only_src))}")
        if only_tgt:
            parts.append(f"the source lacks {', '.join(map(repr, only_tgt))}")
        raise FeatureMismatchError(
            f"source and target need the same feature columns: {'; '.join(parts)}. Add or "
            "drop those columns (--ignore drops them; for domains described by different "
            "features, HeDANN in transferkit.heterogeneous maps each into a shared space).")
    if not src_cols:
        raise InputError(f"there are no feature columns besides {label!r}.")

    ys, yt = split_labels(source_df, target_df, label)
    names = _feature_layout(source_df, target_df, src_cols)
    Xs = encode_features(source_df, names, domain="source")
    Xt = encode_features(target_df, names, domain="target")
    return Xs, ys, Xt, yt, names


def _str_columns(df: pd.DataFrame) -> pd.DataFrame:
    if all(isinstance(c, str) for c in df.columns):
        return df
    out = df.copy(deep=False)
    out.columns = [str(c) for c in df.columns]
    return out


def _feature_layout(source_df: pd.DataFrame, target_df: pd.DataFrame,
                    cols: list[str]) -> list[str]:
    """Encoded feature names: numeric columns as they are, text columns one-hot."""
    names: list[str] = []
    for col in cols:
        s, t = source_df[col], target_df[col]
        # An all-empty column reads as float in pandas; let the other domain decide.
        typed = [x for x in (s, t) if x.notna().any()] or [s]
        if any(_is_numeric(x) for x in typed):
            names.append(col)  # a stray text cell in the other domain is reported later
            continue
        values = pd.concat([s, t]).dropna().astype(str)
        names.extend(f"{col}{ONE_HOT_SEP}{v}" for v in sorted(values.unique()))
    return names


def encode_features(df: pd.DataFrame, feature_names: Sequence[str], *,
                    domain: str = "data") -> np.ndarray:
    """Encode ``df`` into the columns ``feature_names`` made by :func:`split_domains`.

    A name that is a column of ``df`` is read as numbers; ``column=value`` is the
    indicator of that category. Categories unseen at training are all zeros.

    Raises
    ------
    FeatureMismatchError
        A needed column is absent from ``df``.
    """
    df = _str_columns(df)
    names = [str(n) for n in feature_names]
    columns: list[np.ndarray] = []
    missing: list[str] = []
    for name in names:
        if name in df.columns:
            columns.append(_numeric(df[name], name, domain))
            continue
        col = _one_hot_source(name, df.columns)
        if col is None:
            missing.append(name.split(ONE_HOT_SEP)[0] if ONE_HOT_SEP in name else name)
            continue
        value = name[len(col) + len(ONE_HOT_SEP):]
        columns.append((df[col].astype(str) == value).to_numpy(np.float64)
                       * df[col].notna().to_numpy())
    if missing:
        missing = list(dict.fromkeys(missing))
        raise FeatureMismatchError(
            f"the {domain} lacks the feature column(s) {', '.join(map(repr, missing))} the "
            "model was trained on.")
    if not columns:
        return np.empty((df.shape[0], 0))
    return np.column_stack(columns)


def _one_hot_source(name: str, columns: Any) -> str | None:
    """The column whose one-hot indicator is ``name`` (longest matching prefix)."""
    best = None
    for col in columns:
        if name.startswith(f"{col}{ONE_HOT_SEP}") and (best is None or len(col) > len(best)):
            best = col
    return best
