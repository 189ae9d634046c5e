"""python -m experiments.export [--sweep ID | --filter "params.model = 'classic'"] [--format csv,md,...]

Turns a sweep's MLflow runs into tidy pandas tables and an answer: one row per run; one row per
cell (config minus seed) with mean, std and 95% interval; every pair of cells that differ in one
factor compared by a t-test, in a sentence; each factor's main effect; curves and an accuracy
chart. Written under runs/exports/<sweep id>/ and attached to the sweep's parent run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lenet.atomic import atomic_write

from . import compare, factorial, plots, process
from .config import compose
from .errors import one_line
from .validate import check_writable
from .tracking import CONFIG_HASH, DIVERGED, REUSED, ROLE, SWEEP_ID, SWEPT, open_experiment

# column -> where it lives on the run ("params.*", "metrics.*", "info.*")
COLUMNS = {
    "model": "params.model", "activation": "params.model.activation", "pool": "params.model.pool",
    "optim": "params.optim", "lr": "params.optim.lr", "data": "params.data", "seed": "params.seed",
    "epochs": "params.trainer.epochs", "test_acc": "metrics.test_acc", "best_val_acc": "metrics.best_val_acc",
    "train_seconds": "metrics.train_seconds", "samples_per_second": "metrics.train_samples_per_second",
    "status": "info.status", "test_size": "params.test_size", "run_id": "info.run_id",
}
SHOWN = [c for c in COLUMNS if c not in ("run_id", "test_size")] + ["outcome"]
FORMATS = {
    "csv": lambda df, path: df.to_csv(path, index=False),
    "md": lambda df, path: path.write_text(df.to_markdown(index=False, floatfmt="g") + "\n"),
    "parquet": lambda df, path: df.to_parquet(path, index=False),
    "latex": lambda df, path: path.write_text(df.to_latex(index=False, float_format="%.4g")),
    "json": lambda df, path: df.to_json(path, orient="records", indent=1),
}


def find_sweep(client: MlflowClient, experiment_id: str, sweep: str = "latest"):
    """The parent run of the given sweep id (or the latest sweep), or a one-line error."""
    flt = f"tags.`{ROLE}` = 'sweep'" + ("" if sweep == "latest" else f" and tags.`{SWEEP_ID}` = '{sweep}'")
    found = client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                               max_results=1)
    if found:
        return found[0]
    if sweep != "latest":
        sweeps = client.search_runs([experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep'",
                                    order_by=["attributes.start_time DESC"], max_results=5)
        if sweeps:
            ids = ", ".join(r.data.tags.get(SWEEP_ID, r.info.run_id) for r in sweeps)
            raise LookupError(f"no sweep {sweep!r} in this experiment; its newest sweeps: {ids} "
                              f"(or --sweep latest)")
    what = "no sweep" if sweep == "latest" else f"no sweep {sweep!r}"
    raise LookupError(f"{what} in this experiment; run one with: python -m experiments.run -m ...")


def job_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list:
    """The sweep's runs, one per config: the FINISHED one if any, else the latest attempt.

    A resumed sweep holds earlier failed or killed attempts, and may count FINISHED runs that
    another sweep made (tagged lenet.reused.<run id> on its parent).
    """
    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                              order_by=["attributes.start_time ASC"], max_results=10000)
    reused = [key.removeprefix(REUSED) for key in client.get_run(parent_id).data.tags if key.startswith(REUSED)]
    return latest_per_config(runs + [client.get_run(run_id) for run_id in reused])


def latest_per_config(runs: list) -> list:
    chosen: dict[str, object] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        key = run.data.tags.get(CONFIG_HASH, run.info.run_id)
        if key not in chosen or chosen[key].info.status != "FINISHED":
            chosen[key] = run
    return sorted(chosen.values(), key=lambda r: (int(r.data.tags.get("hydra.job_num", 0)), r.info.start_time))


def filtered_runs(client: MlflowClient, experiment_id: str, where: str) -> list:
    """Job runs of the experiment matching an MLflow filter, e.g. "params.model = 'classic'"."""
    flt = f"tags.`{ROLE}` = 'job' and {where}"  # MLflow filters take no parentheses
    try:
        found = client.search_runs([experiment_id], filter_string=flt, max_results=10000)
    except MlflowException as err:
        raise LookupError(f"bad --filter {where!r}: {' '.join(err.message.split())}") from None
    return latest_per_config(found)


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


def markdown(table: pd.DataFrame) -> str:
    shown = table.round({"train_seconds": 2, "samples_per_second": 0})
    return shown.to_markdown(index=False, floatfmt="g")


def shown_runs(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in SHOWN if c in table.columns]]


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


def accuracy_text(cell: dict) -> str:
    """A cell's test accuracy as the summary shows it: an interval only from 3 runs or more."""
    if cell["n"] == 0:
        return "-"
    if cell["test_acc_interval"] == "t":
        clipped = " (clipped to [0, 1])" if cell["test_acc_clipped"] else ""
        return (f"{cell['test_acc_mean']:.4f} (95% CI {cell['test_acc_ci_low']:.4f} to {cell['test_acc_ci_high']:.4f}"
                f"{clipped})")
    if cell["n"] == 1 and cell["test_acc_interval"]:
        return (f"{cell['test_acc_mean']:.4f} ({cell['test_acc_interval']}: {cell['test_acc_ci_low']:.4f} to "
                f"{cell['test_acc_ci_high']:.4f})")
    return f"{cell['test_acc_values']} (too few runs for an interval)"


def cells_shown(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cell in cells.to_dict("records"):
        fails = cell["runs"] - cell["ok"]
        rate = f"{fails} of {cell['runs']}" + (f" ({cell['failures']}; 95% CI {cell['failure_ci_low']:.2f} to "
                                               f"{cell['failure_ci_high']:.2f})" if fails else "")
        rows.append({"cell": cell["cell"], "runs": cell["runs"], "finished": cell["n"], "failed": rate,
                     "test_acc": accuracy_text(cell)})
    return pd.DataFrame(rows)


def summary_text(result: dict, title: str, with_runs: bool = True) -> str:
    table, cells, found = result["runs"], result["cells"], result["comparisons"]
    if table.empty:  # stopped (or refused by a launcher) before any job made a run
        return f"# {title}\n\nNo runs: the sweep ended before any of its jobs started one.\n"
    lines = [f"# {title}", ""] + ([markdown(shown_runs(table)), ""] if with_runs else [])
    if not result["pivot"].empty and {"model", "optim"} <= set(table.columns):
        lines += ["test_acc by model x optim:", "", result["pivot"].to_markdown(index=False, floatfmt=".4f"), ""]
    if len(cells):
        lines += ["Cells (every swept value but the seed):", "", cells_shown(cells).to_markdown(index=False), ""]
    for outcome, hint in (("collapsed", compare.COLLAPSE_HINT), ("diverged", compare.DIVERGE_HINT)):
        if (table["outcome"] == outcome).any():
            lines += [hint, ""]
    if len(found):
        m = int(found["p"].notna().sum())
        lines += [f"Comparisons of cells that differ in one factor: {int(found['significant'].sum())} of {m} "
                  f"significant at 0.05 after Holm's correction (p-values adjusted over the {m}; each interval at "
                  f"its comparison's Holm level):", ""]
        lines += [f"- {s}" for s in found["sentence"]] + [""]
    model = result["model"]
    if model.note and result["factors"]:
        lines += [f"Factorial model: {model.note}.", ""]
        if len(model.anova):
            lines += [model.anova.to_markdown(index=False, floatfmt=".4g"), ""]
        if len(model.means):
            empty = [c for c in ("ci_low", "ci_high") if model.means[c].isna().all()]
            means = model.means.drop(columns=empty + ([] if model.means["clipped"].any() else ["clipped"]))
            lines += ["Estimated marginal means of test_acc (each level averaged over the other factors' levels):", "",
                      means.to_markdown(index=False, floatfmt=".4f"), ""]
        lines += [f"- {s}" for s in model.interactions] + ([""] if model.interactions else [])
    return "\n".join(lines)


def write(result: dict, folder: Path, formats: list[str], text: str) -> list[Path]:
    """Tables in each format, the three figures and summary.md into folder (each file atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def atomic(path: Path, write_to) -> None:
        written.append(atomic_write(path, write_to))  # a reader never sees half a file

    for name in ("runs", "pivot", "cells", "comparisons", "effects", "anova"):
        if len(result[name]):
            for fmt in formats:
                atomic(folder / f"{name}.{fmt}", lambda p, df=result[name], f=fmt: FORMATS[f](df, p))
    for metric, bands in result["bands"].items():
        if bands:
            atomic(folder / f"curves_{metric}.png", lambda p, b=bands, m=metric: plots.cell_curves(b, m, p))
    if len(result["cells"]):
        atomic(folder / "test_acc_by_cell.png", lambda p: plots.cell_accuracy(result["cells"], p))
    atomic(folder / "summary.md", lambda p: p.write_text(text + "\n"))
    return written


def export_sweep(client: MlflowClient, experiment_id: str, parent, out: Path, formats: list[str],
                 attach: bool = True, runs: list | None = None) -> tuple[str, list[Path]]:
    """Analyse a sweep (runs: its job_runs, when the caller has them), write it under out/<sweep id>/,
    and log it on the sweep's parent run."""
    sweep_id = parent.data.tags[SWEEP_ID]
    swept = json.loads(parent.data.tags.get(SWEPT, "null"))
    runs = job_runs(client, experiment_id, parent.info.run_id) if runs is None else runs
    result = analyse(client, runs, swept)
    title = f"sweep {sweep_id}: {parent.data.tags.get('hydra.overrides', '')}"
    text = summary_text(result, title)
    written = write(result, out / sweep_id, formats, text)
    if attach:
        client.log_artifacts(parent.info.run_id, str(out / sweep_id), artifact_path="summary")
        describe_parent(client, parent.info.run_id, result, title)
    return text, written


MAX_DESCRIPTION = 8000  # MLflow's limit on a tag's value, and so on a run's description


def describe_parent(client: MlflowClient, run_id: str, result: dict, title: str) -> None:
    """The answer on the parent run's own page: the summary as its description (MLflow shows it as
    Markdown on the Overview), the headline numbers as its metrics, the best cell as a tag."""
    text = "####" + summary_text(result, title, with_runs=False).removeprefix("#")  # a heading, not a banner
    if len(text) > MAX_DESCRIPTION:
        note = "\n\n(cut here to fit MLflow's description; the whole summary is summary/summary.md)"
        text = text[: MAX_DESCRIPTION - len(note)].rsplit("\n", 1)[0] + note
    client.set_tag(run_id, "mlflow.note.content", text)
    runs, cells = result["runs"], result["cells"]
    finished = int((runs["status"] == "FINISHED").sum()) if len(runs) else 0
    failed = int((runs["outcome"] != "ok").sum()) if len(runs) else 0
    headline = {"runs_total": len(runs), "runs_finished": finished, "runs_failed": failed, "cells": len(cells)}
    if len(cells) and cells["test_acc_mean"].notna().any():
        best = cells.loc[cells["test_acc_mean"].idxmax()]
        headline["best_cell_test_acc"] = round(float(best["test_acc_mean"]), 6)
        client.set_tag(run_id, "lenet.best_cell", best["cell"])
    client.log_batch(run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in headline.items()])


def where_to_look(tracking_uri: str, experiment_id: str, parent_id: str) -> str:
    """The command that opens the MLflow UI on this store, and the addresses of the runs and the sweep."""
    if tracking_uri.startswith(("http://", "https://")):
        base, start = tracking_uri.rstrip("/"), ""
    else:
        base, start = "http://127.0.0.1:5000", f"mlflow ui --backend-store-uri {tracking_uri} --port 5000, then "
    runs = f"{base}/#/experiments/{experiment_id}/runs"
    view = "?workflowType=machine_learning"  # MLflow 3.17's UI: its Model training view, not GenAI's
    return f"See it in MLflow: {start}open {runs}{view} (this sweep: {runs}/{parent_id}{view})"


def sweep_summary(client: MlflowClient, experiment_id: str, parent_id: str, out: Path, runs: list) -> str:
    """What a sweep prints at its end; its tables and figures go to out and to the parent run."""
    text, _ = export_sweep(client, experiment_id, client.get_run(parent_id), out, ["csv", "md"], runs=runs)
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = compose()
    parser = argparse.ArgumentParser(prog="python -m experiments.export", description=__doc__.split("\n\n")[1])
    parser.add_argument("--sweep", default="latest", help="sweep id (tag lenet.sweep_id), or 'latest'")
    parser.add_argument("--filter", help="instead of a sweep: job runs matching this MLflow filter, "
                                         "e.g. \"params.model = 'classic' and params.`optim.lr` = '0.001'\"")
    parser.add_argument("--experiment", default=defaults.mlflow.experiment)
    parser.add_argument("--tracking-uri", default=defaults.mlflow.tracking_uri)
    parser.add_argument("--format", default="csv,md", help=f"comma-separated, of: {', '.join(FORMATS)}")
    parser.add_argument("--out", type=Path, default=Path(defaults.runs_dir) / "exports")
    parser.add_argument("--no-attach", action="store_true", help="do not log the summary on the parent run")
    args = parser.parse_args(argv)
    args.formats = [f.strip() for f in args.format.split(",")]
    bad = [f for f in args.formats if f not in FORMATS]
    if bad:
        parser.error(f"unknown format {bad[0]!r}; choose from: {', '.join(FORMATS)}")
    return args


def export(args: argparse.Namespace) -> list[Path]:
    client, experiment_id = open_experiment(args.tracking_uri, args.experiment)
    if args.filter:
        runs = filtered_runs(client, experiment_id, args.filter)
        if not runs:
            raise LookupError(f"no runs match {args.filter!r} in experiment {args.experiment}")
        name = "filter-" + hashlib.sha1(args.filter.encode()).hexdigest()[:8]
        title = f"{len(runs)} runs of {args.experiment} where {args.filter}"
        result = analyse(client, runs, None)
        text = summary_text(result, title)
        written = write(result, args.out / name, args.formats, text)
    else:
        parent = find_sweep(client, experiment_id, args.sweep)
        text, written = export_sweep(client, experiment_id, parent, args.out, args.formats, not args.no_attach)
    print(text)
    print("written:", *written, sep="\n  ")
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_writable(str(args.out), "--out")
        export(args)
    except (KeyError, IndexError):  # a bug, not a user's mistake: its traceback helps
        raise
    except (LookupError, ValueError, OSError) as err:
        print(f"error: {one_line(err) if isinstance(err, OSError) else err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    process.tune()
    process.fast_exit(main())
