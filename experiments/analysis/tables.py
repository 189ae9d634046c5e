"""A sweep's runs as pandas tables, and everything the answer is made of: one row per run (with what it came
to, the code that made it and any files it lacks), the verdict (analysis.family), the per-epoch curve bands."""
from __future__ import annotations

import tempfile

import pandas as pd
from mlflow.tracking import MlflowClient

from ..config import recipe
from ..metrics import CURVES, where
from ..record.resume import missing_files
from . import family, stats
from .outcomes import factors_of, groupby, trained
from .results import results_table, with_cells


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
    table = results_table(runs, swept, missing)
    answered = table[table["superseded_why"].isna()]  # what counts, and runs still running (shown, in no number)
    factors = factors_of(answered, swept)
    table = with_cells(table, factors)
    answered = table.loc[answered.index]
    verdict = family.verdict(answered, factors, predictions_of(client), correction)
    comparisons = pd.concat([verdict.recipes, verdict.networks], ignore_index=True)
    result = {"runs": table, "answered": answered, "factors": factors,
              "pivot": accuracy_pivot(answered).reset_index(),
              "cells": verdict.cells, "comparisons": comparisons, "verdict": verdict,
              "effects": verdict.model.means, "anova": verdict.model.anova}
    result["bands"] = {m.name: curve_bands(histories(client, answered, factors, m.name), m.bounds)
                       for m in where(CURVES)}
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
        out[group["cell"].iloc[0] if "cell" in group else recipe(factors, values)] = pd.DataFrame(series).sort_index()
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
