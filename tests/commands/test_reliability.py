"""Faults injected into real sweeps that need processes of their own: concurrent sweeps and stores, a full disk,
changed code, a store overwritten under a running sweep."""
import os
import shutil
import time
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest
from experiments.config import PROJECT_ROOT

from ..support.commands import ENV, printed, run, start
from ..support.store import runs_in


def test_sweeps_started_at_once_keep_apart_and_the_same_sweep_runs_once(runs_dir):
    first, second = ["-m", "model=classic,d2l", "seed=0"], ["-m", "model=classic,d2l", "seed=1"]
    procs = [subprocess.Popen([sys.executable, "-m", "experiments.run", *argv, "trainer.epochs=1",
                               f"runs_dir={runs_dir}"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for argv in (first, second, first)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes[1] == 0 and sorted([codes[0], codes[2]]) == [0, 1], outputs
    refused = outputs[0][1] if codes[0] else outputs[2][1]
    assert refused.startswith("error: this sweep is already running against sqlite:///") and \
        refused.count("\n") == 1
    jobs = runs_in(runs_dir)
    parents = runs_in(runs_dir, "sweep")
    assert len(parents) == 2 and len({p.data.tags["hydra.sweep_dir"] for p in parents}) == 2
    for parent in parents:
        children = [j for j in jobs if j.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        seed = parent.data.tags["hydra.overrides"].split("seed=")[1][0]
        assert len(children) == 2 and {c.data.params["seed"] for c in children} == {seed}
        assert {c.info.status for c in children} == {"FINISHED"}
        assert parent.info.status == "FINISHED"
    assert len({j.data.tags["lenet.config_hash"] for j in jobs}) == len(jobs) == 4  # nothing trained twice


OPEN_AND_RUN = """
import sys
from pathlib import Path
from experiments.record.runs import tracked_run
from experiments.record.store import connect

tracking = connect(f"sqlite:///{sys.argv[1]}/mlflow.db", "lenet-sweeps")
with tracked_run(tracking, f"process {sys.argv[2]}", {"lenet.role": "job"}, Path(sys.argv[1])) as run:
    run.metrics({"test_acc": 0.5})
"""


def test_processes_opening_a_new_store_at_once_do_not_race(tmp_path):
    # Four processes at once find no store: each creates the schema and the experiment, or waits for one that does.
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_RUN, str(tmp_path), str(i)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert sorted(r.info.status for r in runs_in(tmp_path)) == ["FINISHED"] * 4


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (the store takes ~1 MB of it), unmounted afterwards; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_leaves_nothing_running_and_a_rerun_resumes(small_disk, empty_store, tmp_path):
    shutil.copy(empty_store, small_disk / "mlflow.db")
    command = ["experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", f"runs_dir={small_disk}",
               f"data.cache_dir={tmp_path / 'cache'}"]
    proc = run(*command, check=False)
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in printed, printed
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "no space left on device" in error and str(small_disk) in error, error
    assert "--- Logging error ---" not in printed  # the log file on the same disk: one warning, not a traceback each
    assert printed.count("cannot be written (No space left on device); logging to the terminal only") <= 2
    assert not list(small_disk.rglob("*.tmp"))
    with sqlite3.connect(small_disk / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    jobs = runs_in(small_disk)
    assert jobs and "RUNNING" not in {r.info.status for r in jobs + runs_in(small_disk, "sweep")}
    assert {r.info.status for r in jobs} <= {"FINISHED", "FAILED"}
    failed = [r for r in jobs if r.info.status == "FAILED"]
    assert failed and all(r.data.tags.get("lenet.outcome") != "ok" for r in failed)  # its files never landed
    best = [line.split("Best: ")[1].split(",")[0] for line in printed.splitlines() if line.startswith("Best: ")]
    finished = {r.data.params["cell"] for r in jobs if r.info.status == "FINISHED"}
    assert set(best) <= finished  # never a recipe whose run FAILED

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    again = run(*command)
    assert "Resuming sweep" in again.stdout + again.stderr
    jobs = runs_in(small_disk)
    assert sorted({r.data.params["model"] for r in jobs if r.info.status == "FINISHED"}) == ["classic", "d2l"]
    (parent,) = runs_in(small_disk, "sweep")
    assert parent.info.status == "FINISHED"


def test_changed_library_code_is_trained_again_not_silently_resumed(tmp_path):
    # A checkout of its own whose lenet/model.py a user edits between two runs of the same command.
    checkout = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "*.egg-info",
                                                                           "__pycache__", ".pytest_cache", "docs"))
    command = ["experiments.run", "-m", "model=d2l", "trainer.epochs=1", "mlflow.log_model=false",
               f"runs_dir={tmp_path / 'runs'}"]
    run(*command, cwd=checkout)
    model = checkout / "lenet" / "model.py"
    model.write_text(model.read_text().replace("        nn.init.xavier_uniform_(module.weight)",
                                               "        nn.init.xavier_uniform_(module.weight)\n"
                                               "        nn.init.zeros_(module.bias)"))
    again = run(*command, cwd=checkout)
    assert "was made by other library code" in printed(again) and "skipped" not in printed(again)
    first, second = runs_in(tmp_path / "runs")
    assert first.data.tags["lenet.code"] != second.data.tags["lenet.code"]  # each says which code made it
    assert second.info.status == "FINISHED" and second.data.metrics["test_acc"] != first.data.metrics["test_acc"]
    # The rerun's own answer is the new code's run; the old one is named, in no number.
    summary = printed(again).split("Sweep FINISHED")[1]
    new, old = (f"{r.data.metrics['test_acc']:.4f}" for r in (second, first))
    assert f"d2l+adam: test accuracy {new}" in summary and old not in summary
    assert "1 older run superseded by a newer run of its config (other library code: 1): in runs.csv" in summary
    table = pd.read_csv(next((tmp_path / "runs" / "exports").glob("*/runs.csv"))).set_index("run_id")
    assert table.loc[first.info.run_id, "superseded_by"] == second.info.run_id
    assert bool(table.loc[second.info.run_id, "counted"]) and not bool(table.loc[first.info.run_id, "counted"])
    pivot = pd.read_csv(next((tmp_path / "runs" / "exports").glob("*/pivot.csv"))).set_index("model")
    assert f"{pivot.loc['d2l', 'adam']:.4f}" == new
    reused = run(*command, "reuse_other_code=true", cwd=checkout)
    assert "skipped, already FINISHED" in printed(reused)  # asked for: the old runs count


def test_a_log_file_on_a_full_disk_is_one_warning_not_a_traceback_per_record(runs_dir):
    # /dev/full answers every write with ENOSPC: the job's log file on a disk that is full, while the run goes on.
    proc = run("experiments.run", "-m", "model=d2l", "trainer.epochs=2", "trainer.progress=lines",
               "mlflow.log_model=false", f"runs_dir={runs_dir}", "hydra.job_logging.handlers.file.filename=/dev/full")
    output = printed(proc)
    assert "--- Logging error ---" not in output and "Traceback" not in output
    assert output.count("warning: the log file /dev/full cannot be written (No space left on device); logging to the "
                        "terminal only") == 1
    assert "d2l+adam: test_acc" in output  # the terminal still has every line
    (job,) = runs_in(runs_dir)
    assert job.info.status == "FINISHED"


def test_a_store_overwritten_during_the_sweep_fails_it_in_one_line_naming_the_store(runs_dir):
    marker, release = runs_dir / "second-epoch", runs_dir / "overwritten"
    proc = start("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=2", "trainer.limit_batches=2",
                 "mlflow.log_model=false", "trainer.progress=lines", f"runs_dir={runs_dir}",
                 "model._target_=tests.support.faults.waiting_lenet", f"+model.marker={marker}",
                 f"+model.release={release}")
    deadline = time.monotonic() + 120
    while not marker.exists():  # the first job waits at its second epoch
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    os.truncate(runs_dir / "mlflow.db", 0)  # another program empties it (`: > mlflow.db`, a botched copy)
    release.touch()
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1 and "Traceback" not in output, output
    (error,) = [line for line in output.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: the MLflow store sqlite:///{runs_dir}/mlflow.db is damaged (") and \
        "another program wrote to it during the sweep" in error
    from experiments.record.store import damage

    assert damage(f"sqlite:///{runs_dir}/mlflow.db") is not None  # left as the sweep found it, not "repaired"
