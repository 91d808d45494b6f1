"""Load a table of runs into the canonical analysis columns: params, tokens, flops, loss.

Sources: a DataFrame, a CSV (or Parquet) path, or a results directory of the sweep
runner (``runs.csv``: params_nonembedding is params, eval_loss is loss, only rows with
status == "done"; with ``curves=True`` its ``curves.csv``, one row per evaluation). Tokens are derived from FLOPs as D = C/(k·N) when missing, FLOPs from
tokens as C = k·N·D; k is the FLOP convention ("6N" -> 6, or a number; for a model-dependent convention
such as "exact" the table's median C/(N·D), which needs both columns). WSD trunk rows
(plan_kind == "trunk": constant LR, not annealed) and learning-rate tuning runs (plan_kind == "lr_tune":
off-optimum by design; their curves too) are left out of a results directory. Other columns
(run_id, width, depth, ...) are kept.

A canonical table always has all three of params, tokens and flops, so its own FLOPs
per parameter-token (``flops_per_param_token``: the median C/(N·D)) is a property of
its rows: it survives filtering, merging and concatenation, and it is what ``fit_law``
records as the fit's k unless k is passed explicitly. Nothing rides on
``DataFrame.attrs``.

Reading is strict: a CSV row with more or fewer fields than its header (a file cut
mid-line) is an error naming the file and line, unless ``bad_lines="warn"`` drops such rows
with a warning that counts them; an empty, binary or unparsable file is an error naming the
file. A results directory's runs.csv and curves.csv are checked to be one generation
(``scaling.sweep.store``); a torn pair is rebuilt from the per-run files, with a warning.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.core.columns import (
    CANONICAL,
    FLOP_CONVENTION,
    NOT_LAW_CURVES,
    NOT_LAW_RUNS,
    PER_EVALUATION,
    PLAN_KIND,
    RUN_ID,
    STATUS,
    STORE_LOSS,
    STORE_PARAMS,
)
from scaling.core.status import DONE

__all__ = ["load_table", "as_table", "flop_factor", "flops_per_param_token", "CANONICAL"]


def flop_factor(convention: str | float | int) -> float:
    """FLOPs per parameter per token: "6N" -> 6.0, "8N" -> 8.0, a number -> itself."""
    if isinstance(convention, (int, float, np.integer, np.floating)) and not isinstance(convention, bool):
        k = float(convention)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(?:\*?\s*N(?:D)?)?\s*", str(convention), flags=re.IGNORECASE)
        if not m:
            raise ValueError(f"FLOP convention {convention!r} not understood; use e.g. '6N' or a number like 6")
        k = float(m.group(1))
    if not k > 0:
        raise ValueError(f"FLOP convention must be positive; got {convention!r}")
    return k


BAD_LINES = ("error", "warn")


def _read_csv(path: Path, bad_lines: str = "error", text: str | None = None) -> pd.DataFrame:
    """A CSV file (or its text, already read) as a frame; malformed rows are an error
    naming file and line, or with bad_lines="warn" dropped and counted in a warning."""
    if bad_lines not in BAD_LINES:
        raise ValueError(f"bad_lines={bad_lines!r} must be one of {', '.join(BAD_LINES)}")
    if text is None:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not a UTF-8 text CSV (binary?): {err.reason} at byte {err.start}") from None
    if not text.strip():
        raise ValueError(f"{path}: empty file (no header row)")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        records, bad = [], []
        for fields in reader:
            if not fields:
                continue
            if len(fields) == len(header):
                records.append(fields)
            else:
                bad.append(reader.line_num)
    except csv.Error as err:
        raise ValueError(f"{path}: malformed CSV ({err})") from None
    if bad:
        if bad_lines == "error":
            raise ValueError(
                f"{path}:{bad[0]}: a row whose field count differs from the header's {len(header)} (malformed or "
                f"truncated; {len(bad)} such row(s) in all). Fix the file, or drop them with bad_lines='warn' "
                "(scaling fit --skip-bad-lines)"
            )
        warnings.warn(
            f"{path}: dropped {len(bad)} malformed row(s) (line {', '.join(map(str, bad[:10]))}"
            f"{', ...' if len(bad) > 10 else ''})",
            stacklevel=3,
        )
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *records])
        text = buf.getvalue()
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise ValueError(f"{path}: cannot be read as CSV ({err})") from None


def _read_store(path, name: str, bad_lines: str = "error", text: str | None = None) -> pd.DataFrame:
    """A results directory's table: `path` is a local Path or a scaling.storage.Storage
    (an object store); `text` is the CSV already read (a rebuilt torn pair)."""
    where = path if isinstance(path, Path) else path.root
    if text is not None:
        return _read_csv(Path(str(where)) / f"{name}.csv", bad_lines, text)
    if isinstance(path, Path):
        f = path / f"{name}.csv"
        if f.exists():
            return _read_csv(f, bad_lines)
        f = path / f"{name}.parquet"
        if f.exists():
            return pd.read_parquet(f)
    else:
        if path.exists(f"{name}.csv"):
            data = path.read_bytes(f"{name}.csv")
            try:
                csv_text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}/{name}.csv: not a UTF-8 text CSV (binary?): {err.reason}") from None
            return _read_csv(Path(f"{name}.csv"), bad_lines, csv_text)
        if path.exists(f"{name}.parquet"):
            return pd.read_parquet(io.BytesIO(path.read_bytes(f"{name}.parquet")))
    raise FileNotFoundError(f"{where} is a directory without {name}.csv: not a results directory")


def _source_path(source):
    """A local Path, or for a URL (s3://, gs://, ...) a scaling.storage.Storage."""
    from scaling.storage import Storage, is_url

    if is_url(source):
        return Storage.at(source)
    return Path(source)


def _checked_pair(path: Path) -> tuple[str, str] | tuple[None, None]:
    """The results directory's (runs.csv, curves.csv) texts when they had to be rebuilt
    from its per-run files (a torn pair), else (None, None): read the files as they are."""
    from scaling.sweep.store import ResultsStore

    store = ResultsStore(path)
    if store.check_tables() is None:
        return None, None
    runs, curves, problem = store.read_tables()  # ValueError when it cannot be rebuilt
    warnings.warn(f"{problem}; read the tables rebuilt from {store.runs_dir} instead", stacklevel=4)
    return runs, curves


def _read(source, curves: bool = False, bad_lines: str = "error") -> tuple[pd.DataFrame, bool]:
    """(frame, is_results_dir)."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), False
    path = _source_path(source)
    if not isinstance(path, Path):  # an object-store URL: a results directory or one table
        name = str(source).rstrip("/").rsplit("/", 1)[-1]
        if name.endswith((".csv", ".parquet", ".pq")):
            data = io.BytesIO(_source_path(str(source).rstrip("/").rsplit("/", 1)[0]).read_bytes(name))
            return (pd.read_csv(data) if name.endswith(".csv") else pd.read_parquet(data)), False
        if not (path.exists("runs.csv") or path.exists("runs.parquet")):
            raise FileNotFoundError(f"{source}: no runs.csv there (not a results directory)")
    if not isinstance(path, Path) or path.is_dir():
        runs_text, curves_text = _checked_pair(path) if isinstance(path, Path) else (None, None)
        runs = _read_store(path, "runs", bad_lines, runs_text)
        if not curves:
            return runs, True
        if STATUS in runs.columns:
            runs = runs[runs[STATUS].astype(str) == DONE]
        per_run = runs.drop(columns=[c for c in PER_EVALUATION if c in runs.columns])
        cur = _read_store(path, "curves", bad_lines, curves_text)
        if RUN_ID not in cur.columns or RUN_ID not in runs.columns:
            raise ValueError(f"{path}: curves and runs tables both need a {RUN_ID} column")
        return cur.merge(per_run, on=RUN_ID, how="inner", suffixes=("", "_run")), True
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path), False
    return _read_csv(path, bad_lines), False


def load_table(
    source,
    *,
    params_col: str | None = None,
    tokens_col: str | None = None,
    flops_col: str | None = None,
    loss_col: str | None = None,
    convention: str | float | None = None,
    curves: bool = False,
    bad_lines: str = "error",
) -> pd.DataFrame:
    """Canonical table (columns params, tokens, flops, loss + the source's other columns).

    Column names default to the canonical ones, or for a results directory to
    params_nonembedding / tokens / flops / eval_loss. Raises ValueError naming the column
    when one is missing (listing what exists), or when a value is non-positive or NaN
    (naming the row).

    convention: k of C = k·N·D, used to derive the missing one of tokens and flops ("6N",
    "8N", a number, or a model-dependent convention such as "exact", which needs both
    columns). Default: a results directory's recorded flop_convention, else "6N".

    curves=True reads a results directory's curves.csv (one row per run and evaluation),
    each row joined with its run's columns from runs.csv (finished runs only); rows
    without a loss (steps with no evaluation) are dropped rather than rejected.

    bad_lines: "error" (default) rejects a CSV row whose field count differs from the
    header's, naming file and line; "warn" drops such rows with a warning that counts them.
    """
    df, is_results = _read(source, curves, bad_lines)
    if is_results:
        if STATUS in df.columns:
            df = df[df[STATUS].astype(str) == DONE]
        params_col = params_col or (STORE_PARAMS if STORE_PARAMS in df.columns else "params")
        loss_col = loss_col or (STORE_LOSS if STORE_LOSS in df.columns else "loss")
        if FLOP_CONVENTION in df.columns and convention is None and df[FLOP_CONVENTION].notna().any():
            convention = df[FLOP_CONVENTION].dropna().iloc[0]
        if PLAN_KIND in df.columns:
            # WSD trunks run at constant LR: their final losses are not annealed, so they
            # are not points of the scaling law (their cooldown branches are). LR tuning
            # runs train at deliberately wrong learning rates (their curves too).
            drop = NOT_LAW_CURVES if curves else NOT_LAW_RUNS
            df = df[~df[PLAN_KIND].astype(str).isin(drop)]
    if convention is None:
        convention = "6N"
    names = {
        "params": params_col or "params",
        "tokens": tokens_col or "tokens",
        "flops": flops_col or "flops",
        "loss": loss_col or "loss",
    }
    available = list(df.columns)
    for role in ("params", "loss"):
        if names[role] not in df.columns:
            raise ValueError(f"missing {role} column {names[role]!r}; the table has columns {available}")
    has_tokens = names["tokens"] in df.columns
    has_flops = names["flops"] in df.columns
    if not has_tokens and not has_flops:
        raise ValueError(
            f"need a tokens column {names['tokens']!r} or a flops column {names['flops']!r}; "
            f"the table has columns {available}"
        )
    if curves:
        df = df[pd.to_numeric(df[names["loss"]], errors="coerce").notna()]
    out = df.drop(columns=[c for c in CANONICAL if c in df.columns and c not in names.values()])
    out = out.rename(columns={v: k_ for k_, v in names.items() if v in df.columns and v != k_})
    out = out.reset_index(drop=True)
    for role in ("params", "loss") + (("tokens",) if has_tokens else ()) + (("flops",) if has_flops else ()):
        out[role] = _positive(out[role], names[role], df)
    k = _effective_k(convention, out, has_tokens and has_flops)
    if not has_tokens:
        out["tokens"] = out["flops"] / (k * out["params"])
    if not has_flops:
        out["flops"] = k * out["params"] * out["tokens"]
    cols = list(CANONICAL) + [c for c in out.columns if c not in CANONICAL]
    return out[cols]


def as_table(data) -> pd.DataFrame:
    """The canonical table for data: a DataFrame, path or results directory (as
    ``load_table``), or a mapping of column name -> array."""
    if isinstance(data, Mapping):
        data = pd.DataFrame({k: np.asarray(v) for k, v in data.items()})
    return load_table(data)


def flops_per_param_token(table: pd.DataFrame) -> float:
    """k of C = k·N·D for a canonical table: the median over rows of flops/(params·tokens).

    For a fixed convention ("6N") every row gives k itself; for a model-dependent one
    ("exact", attention and readout terms included) the rows differ and the median
    stands in (what ``load_table`` used to derive a missing column)."""
    ratio = table["flops"].to_numpy(float) / (table["params"].to_numpy(float) * table["tokens"].to_numpy(float))
    return float(np.median(ratio))


def _effective_k(convention, table: pd.DataFrame, has_both: bool) -> float:
    """k of C = k·N·D: the convention's own number ("6N" -> 6), or, for conventions whose
    FLOPs per parameter-token depend on the model ("exact", "6N+attention": attention and
    readout terms), the table's median C/(N·D). Such conventions can only be used when
    the table has both tokens and FLOPs, since nothing converts one into the other."""
    try:
        return flop_factor(convention)
    except ValueError:
        if not has_both:
            raise ValueError(
                f"FLOP convention {convention!r} has no fixed FLOPs per parameter-token, so tokens "
                "and FLOPs cannot be derived from each other: give both columns, or a numeric "
                "convention such as '6N' or 6"
            ) from None
    return flops_per_param_token(table)


def _positive(col: pd.Series, name: str, original: pd.DataFrame) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        label = original.index[i] if len(original.index) > i else i
        raw = col.iloc[i]
        what = (
            "NaN or missing"
            if pd.isna(raw) or not np.isfinite(values[i]) and not np.isinf(values[i])
            else "not positive"
        )
        if np.isinf(values[i]):
            what = "infinite"
        raise ValueError(
            f"column {name!r} has {int(bad.sum())} bad value(s): row {label} is {raw!r} ({what}); "
            "every value must be finite and positive"
        )
    return pd.Series(values, index=col.index)
