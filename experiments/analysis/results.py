"""The runs table: one row per run, one column per fact, one name each, with one type in every format.

It is made once, here, from a sweep's (or a filter's) runs, and every answer reads it: the summary, the
cells and the tests (the runs that count), the pivot, the exports, the parent run's page and the saved view.
Every attempt of a config is a row; the newest that ended counts, the others are marked superseded (by which
run, and why: record.attempts). A run's outcome follows its final MLflow status first (a run that did not end
FINISHED is never ok). COLUMNS is the schema the README documents; `read_runs` reads any exported format back
with exactly these types.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import recipe
from ..metrics import BY_NAME, RUNS, where
from ..record.attempts import superseded
from ..record.schema import CLOSED, CODE, DIVERGED, MODEL, OUTCOME, OVERRIDES
from .outcomes import FACTOR_KEYS, outcome, with_test_intervals

KINDS = {"string": "str", "int": "Int64", "float": "float64", "bool": "bool"}  # pandas dtypes of each kind


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string, int, float or bool
    meaning: str


FACTOR_KINDS = {"optim.lr": "float", "optim.momentum": "float", "optim.weight_decay": "float",
                "data.val_fraction": "float", "trainer.epochs": "int", "trainer.batch_size": "int"}

COLUMNS = (
    Column("run_id", "string", "the MLflow run"),
    Column("run_name", "string", "the job's name: its recipe, and its seed where seeds are swept"),
    Column("cell", "string", "its recipe: every swept value but the seed (classic+adam)"),
    *(Column(key, FACTOR_KINDS.get(key, "string"), "the config value (a group's option for model, optim, data)")
      for key in FACTOR_KEYS),
    Column("seed", "int", "the seed of the weights, the validation split and the shuffling"),
    Column("status", "string", "MLflow's run state: FINISHED, FAILED, KILLED or RUNNING"),
    Column("outcome", "string", "what it came to: ok, collapsed, diverged, failed, killed, interrupted or running"),
    Column("counted", "bool", "whether it is in the answer: the newest run of its config that ended"),
    Column("superseded_by", "string", "the run that counts instead of it (missing where it counts)"),
    Column("superseded_why", "string", "why its config ran again: other library code, resume=false, ..."),
    Column("test_acc", "float", BY_NAME["test_acc"].meaning),
    Column("test_acc_low", "float", "its 95% Wilson interval over the test images, low end"),
    Column("test_acc_high", "float", "its 95% Wilson interval over the test images, high end"),
    Column("test_size", "int", "test images"),
    Column("train_size", "int", "training images (after the validation split)"),
    *(Column(m.column, "int" if m.fmt == "d" else "float", m.meaning) for m in where(RUNS) if m.name != "test_acc"),
    Column("diverged_epoch", "int", "the epoch whose training loss became nan or inf (missing unless it diverged)"),
    Column("model_uri", "string", "where its MLflow model loads from: mlflow.pytorch.load_model(model_uri)"),
    Column("code", "string", "fingerprint of the lenet/ code that computed it (lenet.code)"),
    Column("started", "string", "when the run started, UTC (ISO 8601)"),
    Column("missing_files", "string", "files a FINISHED run says it has that its artifact store no longer holds"),
)
NAMES = [c.name for c in COLUMNS]


def row_of(run, keys: list[str], missing: list[str]) -> dict:
    """One run's facts, as MLflow holds them (params are strings; typed() makes them numbers)."""
    metrics, tags = run.data.metrics, run.data.tags
    params = run.data.params or launched_with(tags)
    row = {key: params.get(key) for key in keys}
    row |= {m.column: metrics.get(m.name, math.nan) for m in where(RUNS)}
    row = {k: v if not isinstance(v, float) or math.isfinite(v) else math.nan for k, v in row.items()}  # nan, inf
    test_acc = float(row["test_acc"])
    row |= {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
            "outcome": outcome(run.info.status, test_acc, CLOSED in tags, DIVERGED in tags, tags.get(OUTCOME)),
            "test_size": params.get("test_size"), "train_size": params.get("train_size"),
            "model_uri": tags.get(MODEL), "code": tags.get(CODE),
            "diverged_epoch": tags.get(DIVERGED),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.info.start_time / 1000)),
            "missing_files": ", ".join(missing) or None}
    return row


def launched_with(tags: dict) -> dict:
    """The values a run was launched with, from its overrides tag: for a run stopped before it logged its params (a
    signal between its creation and its params, which are one write each), so that it is still named by its recipe
    (the swept values are among its overrides), not as 'nan'."""
    values = {}
    for word in tags.get(OVERRIDES, "").split():
        key, is_set, value = word.partition("=")
        if is_set:
            values[key.lstrip("+~")] = value
    return values


def results_table(runs: list, swept: list[str] | None = None, missing: dict | None = None) -> pd.DataFrame:
    """The runs table of every run given (every attempt), typed, with which count; without its cell column, which
    names recipes by the factors (with_cells)."""
    missing = missing or {}
    extra = [k for k in (swept or []) if k not in NAMES]  # a swept key of no column of its own (model.init ...)
    keys = [*FACTOR_KEYS, "seed", *extra]
    gone = superseded(runs, missing)
    rows = []
    for run in runs:
        row = row_of(run, keys, missing.get(run.info.run_id, []))
        by = gone.get(run.info.run_id)
        row |= {"counted": by is None and run.info.status != "RUNNING", "superseded_by": by.by if by else None,
                "superseded_why": by.why if by else None}
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(dict.fromkeys(NAMES + extra)))
    table = typed(table, {k: inferred_kind(table[k]) for k in extra})
    return typed(with_test_intervals(table))


def with_cells(table: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """The table with each run's recipe named by the factors of what is answered (cells.csv's names); with no
    factor (one recipe), by its model and optimizer, as its job named it (classic+adam)."""
    if factors:
        names = [recipe(factors, values) for values in zip(*(table[f] for f in factors))]
    else:
        names = [f"{m}+{o}" if isinstance(m, str) and isinstance(o, str) else "all runs"
                 for m, o in zip(table["model"], table["optim"])]
    return table.assign(cell=pd.array(names, dtype=KINDS["string"]))


def inferred_kind(values: pd.Series) -> str:
    """A swept key's kind where the schema has none: int or float where every value reads as one."""
    present = values.dropna().astype(str)
    if len(present) and all(re.fullmatch(r"[+-]?\d+", v) for v in present):
        return "int"
    numbers = pd.to_numeric(present, errors="coerce")
    return "float" if len(present) and numbers.notna().all() else "string"


def kinds_of(table: pd.DataFrame, schema: bool = True) -> dict[str, str]:
    """Each column's kind: the runs schema's (schema=False: another table), else read off its dtype."""
    known = {c.name: c.kind for c in COLUMNS} if schema else {}
    out = {}
    for name in table.columns:
        dtype = table[name].dtype
        out[name] = known.get(name) or ("bool" if pd.api.types.is_bool_dtype(dtype) else
                                        "int" if pd.api.types.is_integer_dtype(dtype) else
                                        "float" if pd.api.types.is_float_dtype(dtype) else "string")
    return out


def typed(table: pd.DataFrame, kinds: dict[str, str] | None = None, schema: bool = True) -> pd.DataFrame:
    """Every column as its kind: numbers as numbers (integers as nullable integers), text as text, missing as
    missing. schema: the runs table's kinds by name (False: any other table, by its dtypes)."""
    kinds = {**kinds_of(table, schema), **(kinds or {})}
    out = {}
    for name in table.columns:
        kind, column = kinds[name], table[name]
        if kind in ("int", "float"):
            column = pd.to_numeric(column.astype("object").where(column.notna(), None), errors="coerce")
            column = column.round().astype("Int64") if kind == "int" else column.astype("float64")
        elif kind == "bool":
            column = column.map(lambda v: str(v).lower() == "true" if isinstance(v, str) else bool(v)).astype(bool)
        else:
            column = column.astype("object").where(column.notna(), None)
            column = pd.array([None if v is None else str(v) for v in column], dtype=KINDS["string"])
        out[name] = column
    return pd.DataFrame(out, index=table.index)


def read_runs(path: str | Path) -> pd.DataFrame:
    """An exported runs table (csv, json or parquet) read back with the schema's types, as it was written."""
    path = Path(path)
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    elif path.suffix == ".json":
        table = pd.read_json(path, orient="records", dtype=False, convert_dates=False)
    else:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    kinds = {c.name: c.kind for c in COLUMNS}
    return typed(table, {name: kinds.get(name) or inferred_kind(table[name]) for name in table.columns})


MISSING = "-"  # a missing value in the tables people read (md, latex); csv, json and parquet leave it empty


def formatted(df: pd.DataFrame, floatfmt: str = ".6g") -> pd.DataFrame:
    """The table as the text a person reads: numbers as written (6 significant digits: values are logged to 6
    decimals), integers without a point, missing values as a dash."""
    def text(value, kind: str) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        return format(value, floatfmt) if kind == "float" else str(value)

    kinds = kinds_of(df, schema=False)  # written typed: its dtypes say
    return pd.DataFrame({c: [text(v, kinds[c]) for v in df[c].tolist()] for c in df.columns}, index=df.index,
                        dtype=object)


def numeric(df: pd.DataFrame) -> list[bool]:
    return [kind in ("int", "float") for kind in kinds_of(df, schema=False).values()]


def markdown_table(df: pd.DataFrame, floatfmt: str = ".6g") -> str:
    """GitHub Markdown, numbers right-aligned."""
    align = ["right" if n else "left" for n in numeric(df)]
    return formatted(df, floatfmt).to_markdown(index=False, colalign=align, disable_numparse=True) if len(df.columns) \
        else ""


def latex_table(df: pd.DataFrame) -> str:
    """A booktabs tabular that pdflatex compiles (needs \\usepackage{booktabs}): every cell and header escaped."""
    spec = "".join("r" if n else "l" for n in numeric(df))
    return formatted(df).to_latex(index=False, escape=True, column_format=spec)
