"""A sweep's runs as pandas tables, and everything the answer is made of: one row per run (with what it came
to, the code that made it and any files it lacks), the verdict (analysis.family), the per-epoch curve bands."""
from __future__ import annotations

import tempfile

import pandas as pd
from mlflow.tracking import MlflowClient

from ..record.resume import missing_files
from ..record.schema import CELL, CLOSED, CODE, DIVERGED, OUTCOME
from . import family, stats
from ..config import recipe
from .outcomes import FACTOR_KEYS, METRICS, factors_of, groupby, trained, with_outcomes, with_test_intervals

# column -> where it lives on the run ("params.*", "metrics.*", "info.*", "tags.*")
COLUMNS = {
    "model": "params.model", "activation": "params.model.activation", "pool": "params.model.pool",
    "optim": "params.optim", "lr": "params.optim.lr", "data": "params.data", "seed": "params.seed",
    "epochs": "params.trainer.epochs", "test_acc": "metrics.test_acc", "best_val_acc": "metrics.best_val_acc",
    "train_seconds": "metrics.train_seconds", "samples_per_second": "metrics.train_samples_per_second",
    "status": "info.status", "test_size": "params.test_size", "run_id": "info.run_id",
    "closed": f"tags.{CLOSED}", "code": f"tags.{CODE}", "outcome_tag": f"tags.{OUTCOME}", "cell": f"params.{CELL}",
}
SHOWN = [c for c in COLUMNS if c not in ("run_id", "test_size", "closed", "code", "outcome_tag", "cell")] + ["outcome"]


def runs_table(runs: list, factor_keys=FACTOR_KEYS, missing: dict | None = None) -> pd.DataFrame:
    """One row per run: COLUMNS, then the raw params that can be factors; numbers as numbers; its outcome;
    missing: run id -> the files a FINISHED run lacks."""
    rows = []
    for run in runs:
        status = "DIVERGED" if DIVERGED in run.data.tags else run.info.status
        sources = {"params": run.data.params, "metrics": run.data.metrics, "tags": run.data.tags,
                   "info": {"status": status, "run_id": run.info.run_id}}
        row = {col: sources[src.split(".", 1)[0]].get(src.split(".", 1)[1]) for col, src in COLUMNS.items()}
        row |= {key: run.data.params.get(key) for key in factor_keys if key not in COLUMNS}
        row["missing_files"] = ", ".join((missing or {}).get(run.info.run_id, []))
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS) + [k for k in factor_keys if k not in COLUMNS]
                         + ["missing_files"])
    for col in ("lr", "seed", "epochs", *METRICS, "samples_per_second", "test_size"):
        table[col] = pd.to_numeric(table[col])
    table["closed"] = table["closed"].notna()
    table = with_test_intervals(with_outcomes(table))
    keep = [c for c in table.columns if c in COLUMNS or c == "outcome" or table[c].notna().any()]
    return table[[c for c in keep if c != "missing_files" or table[c].astype(bool).any()]]


def accuracy_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """model x optim of test accuracy among the runs that trained (the mean where several runs share a cell).
    Every model and optim of the runs has its row and column: one whose runs all failed is shown empty, not
    left out as if it had not been swept."""
    pivot = trained(table).pivot_table(index="model", columns="optim", values="test_acc", aggfunc="mean")
    if table.empty:
        return pivot
    return pivot.reindex(index=pd.Index(sorted(table["model"].dropna().unique()), name="model"),
                         columns=pd.Index(sorted(table["optim"].dropna().unique()), name="optim"))


def analyse(client: MlflowClient, runs: list, swept: list[str] | None, correction: str = "holm") -> dict:
    """Every table and figure of the answer, as pandas frames and per-cell curve bands."""
    missing = {r.info.run_id: missing_files(client, r) for r in runs if r.info.status == "FINISHED"}
    table = runs_table(runs, tuple(dict.fromkeys([*FACTOR_KEYS, *(swept or [])])), missing)
    factors = factors_of(table, swept)
    verdict = family.verdict(table, factors, predictions_of(client), correction)
    comparisons = pd.concat([verdict.recipes, verdict.networks], ignore_index=True)
    result = {"runs": table, "factors": factors, "pivot": accuracy_pivot(table).reset_index(),
              "cells": verdict.cells, "comparisons": comparisons, "verdict": verdict,
              "effects": verdict.model.means, "anova": verdict.model.anova}
    result["bands"] = {metric: curve_bands(histories(client, table, factors, metric), bounds)
                       for metric, bounds in (("val_acc", (0.0, 1.0)), ("train_loss", None))}
    return result


def predictions_of(client: MlflowClient):
    """run id -> whether each test sample was predicted right, from the run's predictions.csv (None if absent)."""
    def correct(run_id: str):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run_id, "predictions.csv", tmp)
            except Exception:  # an older run, or its files gone (the summary lists runs that lack files)
                return None
            frame = pd.read_csv(path, usecols=["label", "predicted"])
        return (frame["label"] == frame["predicted"]).to_numpy()

    return correct


def histories(client: MlflowClient, table: pd.DataFrame, factors: list[str], metric: str) -> dict:
    """cell -> DataFrame (epoch x run) of a per-epoch metric, for the cell's runs that trained."""
    out = {}
    for values, group in groupby(trained(table), factors):
        series = {run_id: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, metric)})
                  for run_id in group["run_id"]}
        out[recipe(factors, values)] = pd.DataFrame(series).sort_index()
    return out


def curve_bands(histories: dict[str, pd.DataFrame], bounds: tuple[float, float] | None = None) -> dict:
    """cell -> per-epoch mean and 95% interval across its runs (none from fewer than 3 runs);
    histories: cell -> (epoch x run) values."""
    bands = {}
    for cell, frame in histories.items():
        if frame.empty:  # its runs logged no such metric
            continue
        rows = [{"epoch": epoch, "runs": int(values.notna().sum()), **vars(stats.mean_ci(values.dropna(), bounds))}
                for epoch, values in frame.iterrows()]
        bands[cell] = pd.DataFrame(rows)
    return bands
