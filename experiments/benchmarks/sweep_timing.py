"""`python -m experiments.bench --sweep`: the run command's whole sweep, timed by phase on a store of its own.

Each phase is read off the record the sweep leaves: every job's run starts and ends in MLflow, and its
train_seconds metric is the time its epochs took. What is not training is the harness's own time. With
--prefill N the same sweep is timed again on a store that already holds N earlier runs, to show that
the per-job overhead does not grow with the store.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hydra.utils import instantiate

from lenet.data import prepare

from ..record.schema import CONFIG_HASH, PARENT, ROLE, SWEEP_ID, SWEEP_KEY
from ..record.store import connect, store_template
from ..validate import check_command

MAIN_SWEEP = ["model=classic,d2l", "optim=sgd,adam"]


def time_sweep(overrides: list[str], prefill: int = 0, warm: bool = False) -> int:
    """Run the sweep command on a fresh store (and on one holding `prefill` earlier runs) and print where
    its wall time went; warm: run it in this process with run_sweep, then again, and time the second."""
    given = {o.split("=", 1)[0] for o in overrides}
    overrides = [o for o in MAIN_SWEEP if o.split("=", 1)[0] not in given] + overrides
    configs = check_command(["-m", *overrides])
    cfg = configs[0]  # the first job: where data and cache live
    shared = [f"data.{k}={cfg.data[k]}" for k in ("root", "cache_dir") if f"data.{k}" not in given]
    for job_cfg in configs:  # fill the dataset cache outside the timing
        prepare(input_size=instantiate(job_cfg.model).input_size, seed=job_cfg.seed, **job_cfg.data)
    with contextlib.suppress(OSError):  # and the machine's empty-store template, a cache of the same kind
        store_template()
    if warm:
        return time_warm(overrides + shared, cfg.mlflow.experiment, "seed" in given)
    sequential = not any(o.startswith("hydra/launcher=") and o != "hydra/launcher=basic" for o in overrides)
    stores = [0] + ([prefill] if prefill else [])
    overheads = []
    for earlier in stores:
        with tempfile.TemporaryDirectory(prefix="lenet-bench-") as tmp:
            if earlier:
                print(f"\nfilling a store with {earlier:,} earlier runs ...", flush=True)
                fill(Path(tmp), cfg.mlflow.experiment, earlier, shared)
            command = [sys.executable, "-m", "experiments.run", "-m", *overrides, *shared, f"runs_dir={tmp}"]
            print(("\n" if earlier else "") + " ".join(["python", *command[1:]]), flush=True)
            runs, start, end = timed(command, Path(tmp), cfg.mlflow.experiment)
            if runs is None:
                return 1
            text, overhead = phases(runs, start, end, sequential)
            print(f"store holding {earlier:,} earlier runs:" + text)
            overheads.append(overhead)
    if len(overheads) == 2:
        print(f"\nper-job overhead, store of {prefill:,} runs / empty store: {overheads[1]:.2f} s / "
              f"{overheads[0]:.2f} s = {overheads[1] / overheads[0]:.2f}x")
    return 0


def time_warm(overrides: list[str], experiment: str, seeds_given: bool) -> int:
    """The sweep twice in this process (experiments.run_sweep, as a notebook runs it): the first pays the imports
    and the first use of everything; the second, with seed=1 (or on a store of its own, where the seeds are the
    sweep's), is timed by phase as the command is."""
    from ..api import run_sweep

    sequential = not any(o.startswith("hydra/launcher=") and o != "hydra/launcher=basic" for o in overrides)
    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as first_dir, \
            tempfile.TemporaryDirectory(prefix="lenet-bench-") as tmp:
        started = time.time()
        first = run_sweep([*overrides, f"runs_dir={first_dir}"])
        print(f"first call (cold: imports, first use): {time.time() - started:.2f} s, exit {first.exit_code}")
        again = [*overrides, f"runs_dir={tmp if seeds_given else first_dir}"] + ([] if seeds_given else ["seed=1"])
        print("then, in the same process: run_sweep(" + repr(again) + ")", flush=True)
        start = time.time()
        second = run_sweep(again)
        end = time.time()
        if first.exit_code or second.exit_code:
            print(f"error: the sweeps exited with {first.exit_code} and {second.exit_code}", file=sys.stderr)
            return 1
        client, experiment_id = connect(second.tracking_uri, experiment)
        runs = [client.get_run(run_id) for run_id in second.runs.sort_values("started")["run_id"]]
        text, _ = phases(runs, start, end, sequential)
        print("second call (warm):" + text)
    return 0


def timed(command: list[str], tmp: Path, experiment: str):
    """The sweep's job runs, oldest first, and its start and end (unix seconds); None if it failed."""
    log = tmp / "sweep.log"
    start = time.time()
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    end = time.time()
    if code != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        print(f"error: the sweep exited with {code}", file=sys.stderr)
        return None, start, end
    client, experiment_id = connect(f"sqlite:///{tmp}/mlflow.db", experiment)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{ROLE}` = 'job' and attributes.start_time > "
                              f"{int(start * 1000)}", order_by=["attributes.start_time ASC"], max_results=100)
    return runs, start, end


def phases(runs: list, start: float, end: float, sequential: bool) -> tuple[str, float]:
    """Each job's training and the rest of its share of the wall (Hydra, MLflow, evaluation, files), as a
    table; and the mean per-job overhead."""
    starts = [r.info.start_time / 1000 for r in runs]
    ends = [r.info.end_time / 1000 for r in runs]
    train = [r.data.metrics.get("train_seconds", 0.0) for r in runs]
    rows = [["start-up: imports, checks, store, first job's data", starts[0] - start]]
    if not sequential:  # a parallel launcher: jobs overlap
        jobs = [[r.info.run_name, t, b - a] for r, a, b, t in zip(runs, starts, ends, train)]
        headers = ["job", "training s", "run s (start to end in MLflow)"]
        rows.append([f"{len(runs)} jobs side by side, first start to last end", max(ends) - starts[0]])
        overhead = statistics.mean(j[2] - j[1] for j in jobs)
    else:  # one after another: a job's share of the wall lasts until the next run starts (its last writes
        # overlap the next job's training), the last job's until its run ends
        shares = [b - a for a, b in zip(starts, starts[1:] + ends[-1:])]
        per_job = [share - t for share, t in zip(shares, train)]
        jobs = [[r.info.run_name, t, o] for r, t, o in zip(runs, train, per_job)]
        headers = ["job", "training s", "overhead s"]
        overhead = statistics.mean(per_job)
        rows += [[f"training, {len(runs)} jobs", sum(train)],
                 [f"per-job overhead beyond training (mean; max {max(per_job):.2f})", overhead],
                 ["per-job overhead, median", statistics.median(per_job)]]
        if len(per_job) > 2:  # the first jobs pay one-time imports (the first model MLflow logs)
            rows.append(["per-job overhead from the third job (mean)", statistics.mean(per_job[2:])])
    total = end - start
    rows += [["summary, export and exit after the last job", end - max(ends)], ["total, command start to exit", total],
             ["harness: total minus training", total - sum(train)],
             ["harness share of the wall clock", f"{(total - sum(train)) / total:.0%}"],
             ["training share of the wall clock", f"{sum(train) / total:.0%}"]]
    as_text = lambda table: [[x if isinstance(x, str) else f"{x:.2f}" for x in row] for row in table]  # noqa: E731
    return "\n" + fmt_table(headers, as_text(jobs)) + "\n\n" + fmt_table(["phase", "seconds"], as_text(rows)), overhead


def fill(runs_dir: Path, experiment: str, count: int, shared: list[str]) -> None:
    """A store holding `count` earlier runs: one real 1-epoch job under a parent, trained here, and copies of
    their rows (every table that has a run_uuid), each with its own config hash, sweep id and sweep key;
    one sweep parent per 20 jobs."""
    from ..config import compose_with_choices
    from ..job import run_job
    from ..record.runs import RunLog

    cfg, choices = compose_with_choices(["model=d2l", "seed=987654", "trainer.epochs=1", "mlflow.log_model=false",
                                         "trainer.progress=lines", *shared, f"runs_dir={runs_dir}",
                                         f"mlflow.experiment={experiment}"])
    tracking = connect(cfg.mlflow.tracking_uri, experiment)
    parent = RunLog.create(tracking.client, tracking.experiment_id, "earlier sweep", {ROLE: "sweep", SWEEP_ID: "x",
                                                                                      SWEEP_KEY: "x"})
    run_job(cfg, tracking, "earlier job", {ROLE: "job", PARENT: parent.run_id, SWEEP_ID: "x"}, runs_dir / "out",
            choices)
    parent.end("FINISHED")
    store = runs_dir / "mlflow.db"
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if "run_uuid" in columns(db, t)]
        sources = {role: db.execute("SELECT run_uuid FROM tags WHERE key = ? AND value = ?", (ROLE, role)).fetchone()[0]
                   for role in ("job", "sweep")}
        rng = random.Random(0)
        for i in range(count + count // 20):
            role = "sweep" if i >= count else "job"
            copy_run(db, tables, sources[role], uuid.uuid4().hex, rng)
    print(f"  {count:,} job runs and {count // 20:,} sweep runs in {store} ({store.stat().st_size / 2**20:.0f} MB)")


def columns(db, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def copy_run(db, tables: list[str], source: str, new: str, rng: random.Random) -> None:
    for table in tables:
        cols = columns(db, table)
        picked = ", ".join("?" if c == "run_uuid" else c for c in cols)
        db.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {picked} FROM {table} WHERE run_uuid = ?",
                   (new, source))
    for key in (CONFIG_HASH, SWEEP_KEY, SWEEP_ID):  # each an earlier, other config and sweep
        value = f"{rng.getrandbits(64):016x}"
        db.execute("UPDATE tags SET value = ? WHERE run_uuid = ? AND key = ?", (value, new, key))


def fmt_table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
