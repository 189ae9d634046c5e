"""A sweep's runs as pandas tables and the answer's numbers: one row per run, the cells, the comparisons,
the factorial model and the per-epoch curve bands."""
from __future__ import annotations

import tempfile

import pandas as pd
from mlflow.tracking import MlflowClient

from ..record.schema import DIVERGED
from . import compare, factorial

# column -> where it lives on the run ("params.*", "metrics.*", "info.*")
COLUMNS = {
    "model": "params.model", "activation": "params.model.activation", "pool": "params.model.pool",
    "optim": "params.optim", "lr": "params.optim.lr", "data": "params.data", "seed": "params.seed",
    "epochs": "params.trainer.epochs", "test_acc": "metrics.test_acc", "best_val_acc": "metrics.best_val_acc",
    "train_seconds": "metrics.train_seconds", "samples_per_second": "metrics.train_samples_per_second",
    "status": "info.status", "test_size": "params.test_size", "run_id": "info.run_id",
}
SHOWN = [c for c in COLUMNS if c not in ("run_id", "test_size")] + ["outcome"]

def runs_table(runs: list, factor_keys=compare.FACTOR_KEYS) -> pd.DataFrame:
    """One row per run: COLUMNS, then the raw params that can be factors; numbers as numbers."""
    rows = []
    for run in runs:
        status = "DIVERGED" if DIVERGED in run.data.tags else run.info.status
        sources = {"params": run.data.params, "metrics": run.data.metrics,
                   "info": {"status": status, "run_id": run.info.run_id}}
        row = {col: sources[src.split(".", 1)[0]].get(src.split(".", 1)[1]) for col, src in COLUMNS.items()}
        row |= {key: run.data.params.get(key) for key in factor_keys if key not in COLUMNS}
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS) + [k for k in factor_keys if k not in COLUMNS])
    for col in ("lr", "seed", "epochs", *compare.METRICS, "samples_per_second", "test_size"):
        table[col] = pd.to_numeric(table[col])
    table = compare.with_test_intervals(compare.with_outcomes(table))
    return table[[c for c in table.columns if c in COLUMNS or table[c].notna().any()]]  # unused factor keys go


def accuracy_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """model x optim of test accuracy (the mean where several runs share a cell)."""
    return table.pivot_table(index="model", columns="optim", values="test_acc", aggfunc="mean")


def analyse(client: MlflowClient, runs: list, swept: list[str] | None) -> dict:
    """Every table and figure of the answer, as pandas frames and per-cell curve bands."""
    table = runs_table(runs, tuple(dict.fromkeys([*compare.FACTOR_KEYS, *(swept or [])])))
    factors = compare.factors_of(table, swept)
    model = factorial.fit(compare.finished(table), factors)
    result = {"runs": table, "factors": factors, "pivot": accuracy_pivot(table).reset_index(),
              "cells": compare.cells(table, factors),
              "comparisons": compare.comparisons(table, factors, predictions_of(client)),
              "model": model, "effects": model.means, "anova": model.anova}
    result["bands"] = {metric: compare.curve_bands(histories(client, table, factors, metric), bounds)
                       for metric, bounds in (("val_acc", (0.0, 1.0)), ("train_loss", None))}
    return result


def predictions_of(client: MlflowClient):
    """run id -> whether each test sample was predicted right, from the run's predictions.csv (None if absent)."""
    def correct(run_id: str):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(run_id, "predictions.csv", tmp)
            except Exception:  # an older run, or its artifacts gone
                return None
            frame = pd.read_csv(path, usecols=["label", "predicted"])
        return (frame["label"] == frame["predicted"]).to_numpy()

    return correct


def histories(client: MlflowClient, table: pd.DataFrame, factors: list[str], metric: str) -> dict:
    """cell -> DataFrame (epoch x run) of a per-epoch metric, for the cell's finished runs."""
    out = {}
    for values, group in compare.groupby(compare.finished(table), factors):
        series = {run_id: pd.Series({m.step: m.value for m in client.get_metric_history(run_id, metric)})
                  for run_id in group["run_id"]}
        out[compare.cell_name(factors, values)] = pd.DataFrame(series).sort_index()
    return out
