"""python -m experiments.export [--sweep ID | --filter "params.model = 'classic'"] [--format csv,md,...]

Turns a sweep's MLflow runs into tidy pandas tables and an answer: one row per run; one row per
cell (config minus seed) with mean, std and 95% interval; every pair of cells that differ in one
factor compared, in a sentence; each factor's effect in the factorial model; curves and an
accuracy chart. Written under runs/exports/<sweep id>/ and attached to the sweep's parent run.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from mlflow.exceptions import MlflowException

from . import cli
from .analysis.family import CORRECTIONS
from .analysis.report import FORMATS, export_sweep, write
from .analysis.summary import summary_text
from .analysis.tables import analyse
from .config import compose
from .errors import Abort, BadInput, one_line
from .record.schema import SWEEP_ID, matching_jobs, newest_sweeps
from .record.store import open_experiment
from .validate import check_writable


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
    parser.add_argument("--correction", default=defaults.correction, choices=CORRECTIONS,
                        help="one family of tests for the whole summary: holm (at most a 5%% chance of any false "
                             "claim) or fdr_bh (at most 5%% of the claims expected false; for large sweeps)")
    args = parser.parse_args(argv)
    args.formats = [f.strip() for f in args.format.split(",")]
    bad = [f for f in args.formats if f not in FORMATS]
    if bad:
        parser.error(f"unknown format {bad[0]!r}; choose from: {', '.join(FORMATS)}")
    return args


def find_sweep(client, experiment_id: str, sweep: str = "latest"):
    """The parent run of the given sweep id (or the latest sweep), or BadInput naming the sweeps there."""
    found = newest_sweeps(client, experiment_id, None if sweep == "latest" else sweep)
    if found:
        return found[0]
    if sweep != "latest":
        sweeps = newest_sweeps(client, experiment_id, max_results=5)
        if sweeps:
            ids = ", ".join(r.data.tags.get(SWEEP_ID, r.info.run_id) for r in sweeps)
            raise BadInput(f"no sweep {sweep!r} in this experiment; its newest sweeps: {ids} (or --sweep latest)")
    what = "no sweep" if sweep == "latest" else f"no sweep {sweep!r}"
    raise BadInput(f"{what} in this experiment; run one with: python -m experiments.run -m ...")


def export(args: argparse.Namespace) -> list[Path]:
    try:
        client, experiment_id = open_experiment(args.tracking_uri, args.experiment)
    except LookupError as err:
        raise BadInput(str(err)) from None
    if args.filter:
        try:
            runs = matching_jobs(client, experiment_id, args.filter)
        except MlflowException as err:
            raise BadInput(f"bad --filter {args.filter!r}: {' '.join(err.message.split())}") from None
        if not runs:
            raise BadInput(f"no runs match {args.filter!r} in experiment {args.experiment}")
        name = "filter-" + hashlib.sha1(args.filter.encode()).hexdigest()[:8]
        title = f"{len(runs)} runs of {args.experiment} where {args.filter}"
        result = analyse(client, runs, None, args.correction)
        text = summary_text(result, title)
        written = write(result, args.out / name, args.formats, text)
    else:
        parent = find_sweep(client, experiment_id, args.sweep)
        text, written, _, _ = export_sweep(client, experiment_id, parent, args.out, args.formats, not args.no_attach,
                                        correction=args.correction)
    print(text)
    print("written:", *written, sep="\n  ")
    return written


@cli.one_line_errors
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        check_writable(str(args.out), "--out")
    except ValueError as err:
        raise BadInput(str(err)) from None
    try:
        export(args)
    except OSError as err:  # a disk that filled, a folder that vanished while writing
        raise Abort(one_line(err)) from None
    return cli.OK


if __name__ == "__main__":
    cli.start(main)
