"""A sweep's answer written out: tables, figures and summary.md under exports/<sweep id>/, and onto the
sweep's parent run (its description, headline metrics and summary/ artifacts)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from lenet.atomic import atomic_write

from ..record.attempts import sweep_runs
from ..record.schema import CHANCE, OUTCOME, OVERRIDES, SUPERSEDED, SUPERSEDED_BY, SWEEP_ID, SWEPT
from . import plots
from .outcomes import FAILURES, NOT_COUNTED, best_cell
from .results import latex_table, markdown_table, typed
from .summary import summary_text
from .tables import analyse
from .view import write_view

FORMATS = {
    "csv": lambda df, path: df.to_csv(path, index=False),
    "md": lambda df, path: path.write_text(markdown_table(df) + "\n"),
    "parquet": lambda df, path: df.to_parquet(path, index=False),
    "latex": lambda df, path: path.write_text(latex_table(df)),
    "json": lambda df, path: df.to_json(path, orient="records", indent=1),
}


def write(result: dict, folder: Path, formats: list[str], text: str) -> list[Path]:
    """Tables in each format, the three figures and summary.md into folder (each file atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def atomic(path: Path, write_to) -> None:
        written.append(atomic_write(path, write_to))  # a reader never sees half a file

    for name in ("runs", "pivot", "cells", "comparisons", "effects", "anova"):
        if len(result[name]):
            table = typed(result[name], schema=name == "runs")  # one type per column, the same in every format
            for fmt in formats:
                atomic(folder / f"{name}.{fmt}", lambda p, df=table, f=fmt: FORMATS[f](df, p))
    for metric, bands in result["bands"].items():
        if bands:
            atomic(folder / f"curves_{metric}.png", lambda p, b=bands, m=metric: plots.cell_curves(b, m, p))
    if len(result["cells"]):
        atomic(folder / "test_acc_by_cell.png", lambda p: plots.cell_accuracy(result["cells"], p))
    atomic(folder / "summary.md", lambda p: p.write_text(text + "\n"))
    return written


def export_sweep(client: MlflowClient, experiment_id: str, parent, out: Path, formats: list[str],
                 attach: bool = True, runs: list | None = None,
                 correction: str = "holm") -> tuple[str, list[Path], str | None, dict]:
    """Analyse a sweep (runs: every run it holds, when the caller has them), write it under out/<sweep id>/, and log
    it on the sweep's parent run with its ready view in MLflow's UI, unless that sweep is still running (its own
    end writes them). Returns the summary, the files written, the view's key (None: not written) and the
    analysis (tables.analyse)."""
    sweep_id = parent.data.tags[SWEEP_ID]
    swept = json.loads(parent.data.tags.get(SWEPT, "null"))
    runs = sweep_runs(client, experiment_id, parent.info.run_id) if runs is None else runs
    result = analyse(client, runs, swept, correction)
    title = f"sweep {sweep_id}: {parent.data.tags.get(OVERRIDES, '')}"
    text = summary_text(result, title)
    if parent.info.status == "RUNNING":
        text = (f"(This sweep is still running: what follows is what it has so far; its parent run gets the "
                f"summary when it ends.)\n\n{text}")
    written, view = write(result, out / sweep_id, formats, text), None
    if attach and parent.info.status != "RUNNING":
        client.log_artifacts(parent.info.run_id, str(out / sweep_id), artifact_path="summary")
        mark_runs(client, runs, result["runs"])
        describe_parent(client, parent.info.run_id, result, title)
        view = write_view(client, experiment_id, sweep_id, result["factors"], len(result["runs"]))
    return text, written, view, result


def mark_runs(client: MlflowClient, runs: list, table: pd.DataFrame) -> None:
    """What the runs table decided, on the job runs themselves, for MLflow's UI and the saved view: each run's
    outcome tag as the table derives it (a run whose files failed to land after its tag said ok is corrected), a
    superseded run's lenet.superseded (the view leaves such runs out), and each counted run's score (its test
    accuracy, a failure at chance) so that a recipe whose runs all failed still has its bar."""
    tags = {r.info.run_id: r.data.tags for r in runs}
    now = int(time.time() * 1000)
    for row in table.to_dict("records"):
        run_id, had = row["run_id"], tags.get(row["run_id"], {})
        if row["outcome"] != "running" and had.get(OUTCOME) != row["outcome"]:
            client.set_tag(run_id, OUTCOME, row["outcome"])
        if pd.notna(row["superseded_why"]) and SUPERSEDED not in had:
            client.set_tag(run_id, SUPERSEDED, row["superseded_why"])
            client.set_tag(run_id, SUPERSEDED_BY, row["superseded_by"] or "")
        elif pd.isna(row["superseded_why"]) and SUPERSEDED_BY in had:  # it counts again (the newer run was deleted)
            client.delete_tag(run_id, SUPERSEDED)
            client.delete_tag(run_id, SUPERSEDED_BY)
        if row["counted"] and row["outcome"] not in NOT_COUNTED:
            value = row["test_acc"] if row["outcome"] == "ok" else CHANCE
            client.log_batch(run_id, metrics=[Metric("score", round(float(value), 6), now, 0)])


MAX_DESCRIPTION = 8000  # MLflow's limit on a tag's value, and so on a run's description


def describe_parent(client: MlflowClient, run_id: str, result: dict, title: str) -> None:
    """The answer on the parent run's own page: the summary as its description (MLflow shows it as
    Markdown on the Overview), the headline numbers as its metrics (they add up: every run is trained,
    failed, interrupted or running), the best recipe by score as a tag."""
    text = "####" + summary_text(result, title, with_runs=False).removeprefix("#")  # a heading, not a banner
    if len(text) > MAX_DESCRIPTION:
        note = "\n\n(cut here to fit MLflow's description; the whole summary is summary/summary.md)"
        text = text[: MAX_DESCRIPTION - len(note)].rsplit("\n", 1)[0] + note
    client.set_tag(run_id, "mlflow.note.content", text)
    runs, cells = result["answered"], result["cells"]
    outcome = runs["outcome"] if len(runs) else pd.Series(dtype=str)
    superseded = int(result["runs"]["superseded_why"].notna().sum()) if len(result["runs"]) else 0
    headline = {"runs_total": len(runs), "runs_superseded": superseded, "runs_trained": int((outcome == "ok").sum()),
                "runs_failed": int(outcome.isin(FAILURES).sum()), "runs_interrupted": int((outcome == "interrupted")
                                                                                          .sum()),
                "runs_running": int((outcome == "running").sum()), "cells": len(cells)}
    for cell in cells.to_dict("records"):  # each recipe's numbers, so MLflow's own views can chart them
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", cell["cell"])  # MLflow's keys take no + or =
        for key in ("test_acc_mean", "test_acc_std", "test_acc_min", "test_acc_max", "score_mean"):
            if pd.notna(cell[key]):
                headline[f"cell/{slug}/{key}"] = round(float(cell[key]), 6)
        headline[f"cell/{slug}/runs_failed"] = int(cell["failed_runs"])
    best = best_cell(cells) if len(cells) else None
    if best is not None:
        headline["best_cell_score"] = round(float(best["score_mean"]), 6)
        if pd.notna(best["test_acc_mean"]):
            headline["best_cell_test_acc"] = round(float(best["test_acc_mean"]), 6)
        client.set_tag(run_id, "lenet.best_cell", best["cell"])
    client.log_batch(run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in headline.items()])


def sweep_summary(client: MlflowClient, experiment_id: str, parent_id: str, out: Path, runs: list,
                  correction: str = "holm") -> tuple[str, str | None, dict]:
    """What a sweep prints at its end, its ready view's key and the analysis; its tables and figures go to out
    and to the parent run."""
    text, _, view, result = export_sweep(client, experiment_id, client.get_run(parent_id), out, ["csv", "md"],
                                         runs=runs, correction=correction)
    return text, view, result
