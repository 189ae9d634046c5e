"""python -m experiments.export [--sweep ID] [--experiment NAME] [--format csv,md,...]

Turns a sweep's MLflow runs into a tidy pandas table (one row per run), written under
runs/exports/ and printed as Markdown, with a model x optim pivot of test accuracy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from .config import compose
from .tracking import CONFIG_HASH, DIVERGED, REUSED, ROLE, SWEEP_ID, connect

# column -> where it lives on the run ("params.*", "metrics.*", "info.*", "tags.*")
COLUMNS = {
    "model": "params.model", "activation": "params.model.activation", "pool": "params.model.pool",
    "optim": "params.optim", "lr": "params.optim.lr", "data": "params.data", "seed": "params.seed",
    "epochs": "params.trainer.epochs", "test_acc": "metrics.test_acc", "best_val_acc": "metrics.best_val_acc",
    "train_seconds": "metrics.train_seconds", "samples_per_second": "metrics.train_samples_per_second",
    "status": "info.status", "run_id": "info.run_id",
}
FORMATS = {
    "csv": lambda df, path: df.to_csv(path, index=False),
    "md": lambda df, path: path.write_text(df.to_markdown(index=False) + "\n"),
    "parquet": lambda df, path: df.to_parquet(path, index=False),
    "latex": lambda df, path: path.write_text(df.to_latex(index=False)),
    "json": lambda df, path: df.to_json(path, orient="records", indent=1),
}


def find_sweep(client: MlflowClient, experiment_id: str, sweep: str = "latest"):
    """The parent run of the given sweep id (or the latest sweep), or a one-line error."""
    flt = f"tags.`{ROLE}` = 'sweep'" + ("" if sweep == "latest" else f" and tags.`{SWEEP_ID}` = '{sweep}'")
    found = client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                               max_results=1)
    if not found:
        what = "no sweep" if sweep == "latest" else f"no sweep {sweep!r}"
        raise LookupError(f"{what} in this experiment; run one with: python -m experiments.run -m ...")
    return found[0]


def job_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list:
    """The sweep's runs, one per config: the FINISHED one if any, else the latest attempt.

    A resumed sweep holds earlier failed or killed attempts, and may count FINISHED runs that
    another sweep made (tagged lenet.reused.<run id> on its parent).
    """
    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                              order_by=["attributes.start_time ASC"], max_results=10000)
    reused = [key.removeprefix(REUSED) for key in client.get_run(parent_id).data.tags if key.startswith(REUSED)]
    runs += [client.get_run(run_id) for run_id in reused]
    chosen: dict[str, object] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        key = run.data.tags.get(CONFIG_HASH, run.info.run_id)
        if key not in chosen or chosen[key].info.status != "FINISHED":
            chosen[key] = run
    return sorted(chosen.values(), key=lambda r: int(r.data.tags.get("hydra.job_num", 0)))


def runs_table(runs: list) -> pd.DataFrame:
    """One row per run with the COLUMNS above; numbers as numbers."""
    rows = []
    for run in runs:
        status = "DIVERGED" if DIVERGED in run.data.tags else run.info.status
        sources = {"params": run.data.params, "metrics": run.data.metrics, "tags": run.data.tags,
                   "info": {"status": status, "run_id": run.info.run_id}}
        rows.append({col: sources[src.split(".", 1)[0]].get(src.split(".", 1)[1]) for col, src in COLUMNS.items()})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("lr", "seed", "epochs"):
        table[col] = pd.to_numeric(table[col])
    return table


def accuracy_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """model x optim of test accuracy (the mean where several runs share a cell)."""
    return table.pivot_table(index="model", columns="optim", values="test_acc", aggfunc="mean")


def markdown(table: pd.DataFrame) -> str:
    shown = table.round({"train_seconds": 2, "samples_per_second": 0})
    return shown.to_markdown(index=False, floatfmt="g")


def sweep_summary(client: MlflowClient, experiment_id: str, parent_id: str) -> str:
    table = runs_table(job_runs(client, experiment_id, parent_id))
    if table.empty:
        return "(no runs)"
    shown = table.drop(columns=["run_id"])
    return f"{markdown(shown)}\n\ntest_acc by model x optim:\n{accuracy_pivot(table).to_markdown(floatfmt='.4f')}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = compose()
    parser = argparse.ArgumentParser(prog="python -m experiments.export", description=__doc__.split("\n\n")[1])
    parser.add_argument("--sweep", default="latest", help="sweep id (tag lenet.sweep_id), or 'latest'")
    parser.add_argument("--experiment", default=defaults.mlflow.experiment)
    parser.add_argument("--tracking-uri", default=defaults.mlflow.tracking_uri)
    parser.add_argument("--format", default="csv", help=f"comma-separated, of: {', '.join(FORMATS)}")
    parser.add_argument("--out", type=Path, default=Path(defaults.runs_dir) / "exports")
    args = parser.parse_args(argv)
    args.formats = [f.strip() for f in args.format.split(",")]
    bad = [f for f in args.formats if f not in FORMATS]
    if bad:
        parser.error(f"unknown format {bad[0]!r}; choose from: {', '.join(FORMATS)}")
    return args


def export(args: argparse.Namespace) -> list[Path]:
    client, experiment_id = connect(args.tracking_uri, args.experiment)
    parent = find_sweep(client, experiment_id, args.sweep)
    sweep_id = parent.data.tags[SWEEP_ID]
    table = runs_table(job_runs(client, experiment_id, parent.info.run_id))
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in args.formats:
        for suffix, frame in (("", table), ("-pivot", accuracy_pivot(table).reset_index())):
            path = args.out / f"{sweep_id}{suffix}.{fmt}"
            tmp = path.with_name(path.name + ".tmp")
            FORMATS[fmt](frame, tmp)
            tmp.replace(path)  # atomic: a reader never sees half a file
            written.append(path)
    print(f"sweep {sweep_id} ({parent.info.status}, {len(table)} runs) in experiment {args.experiment}\n")
    print(markdown(table.drop(columns=["run_id"])))
    print(f"\ntest_acc by model x optim:\n{accuracy_pivot(table).to_markdown(floatfmt='.4f')}\n")
    print("written:", *written, sep="\n  ")
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        export(args)
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
