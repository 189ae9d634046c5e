"""Every tag a run of this harness carries, and every query the harness makes by them.

A sweep is one parent run (ROLE "sweep") with one child run (ROLE "job") per job. The queries
below filter on tags and attributes that MLflow's stores index, so they cost the same against a
store holding ten runs or ten thousand.
"""
from __future__ import annotations

import json
from pathlib import Path

ROLE = "lenet.role"  # "sweep" on a sweep's parent run, "job" on each job's run
SWEEP_ID = "lenet.sweep_id"  # the sweep's own id: its Hydra sweep dir's name (unique per launch)
SWEEP_KEY = "lenet.sweep_key"  # on a parent: the sweep's identity (config.sweep_key), equal for the same sweep
SWEPT = "lenet.swept"  # on a parent: JSON list of the keys it sweeps (its factors, and seed)
CONFIG_HASH = "lenet.config_hash"  # on a job: the identity of its resolved config (config.config_hash)
DIVERGED = "lenet.diverged"  # on a job whose training loss became nan or inf: the epoch it stopped at
REUSED = "lenet.reused."  # + run id, on a resumed sweep's parent: a FINISHED run of another sweep it counts
GIT_DIRTY = "lenet.git_dirty"  # "true" when the checkout had uncommitted changes to tracked files
GIT_DIFF = "lenet.git_diff"  # sha1 of those changes (git diff HEAD): two different edits differ here
CODE = "lenet.code"  # fingerprint of the library code that computed the run's results (record.runs.code_version)
ARTIFACTS = "lenet.artifacts"  # on a FINISHED job: its files, comma-separated (record.artifacts checks them)
OWNER = "lenet.owner"  # host:pid:start of the process running the run
HEARTBEAT = "lenet.heartbeat"  # unix seconds of the owner's last sign of life
CLOSED = "lenet.closed"  # on a run closed because its process was gone: why and when
CLAIM = "lenet.claim"  # on a parent: the launch that owns it now (a server store's claim protocol)
CAME_BACK = "lenet.came_back"  # on a run closed while its process was paused: that it came back, and did nothing
RESUMED = "lenet.resumed"  # on a parent taken up again by the same sweep: when, by whom, and how it had ended
SUPERSEDED = "lenet.superseded"  # on a run that does not count: why (set by a requeued job's next attempt, or by
# the sweep's end from record.attempts, then with SUPERSEDED_BY: the run that counts instead)
SUPERSEDED_BY = "lenet.superseded_by"
OUTCOME = "lenet.outcome"  # on a job: ok, collapsed, diverged, failed, interrupted, or killed (when it ended)
CELL = "cell"  # a param on every job: its recipe, the values of its sweep's factors (classic+adam)
MODEL = "lenet.model"  # on a job: the URI its MLflow model loads from (runs:/<id>/<name>)
PARENT = "mlflow.parentRunId"
OVERRIDES = "hydra.overrides"
JOB_NUM = "hydra.job_num"

# A run collapsed when it finished at or below chance plus 5 points on the test set (every dataset here has ten
# classes): it learned nothing a guess would not, as LeNet-5's ReLUs dying under SGD at lr 0.9 do (0.1135 on
# MNIST: every image called a 1).
CHANCE = 0.10
COLLAPSED_AT = CHANCE + 0.05
# What a run's OUTCOME tag may say, by the MLflow status it ended with, its default first: the status comes first,
# so a run that did not end FINISHED is never ok, whatever its training did (its files may have failed to land).
OUTCOMES_BY_STATUS = {"FINISHED": ("ok", "collapsed"), "FAILED": ("failed", "diverged"),
                      "KILLED": ("interrupted", "killed"), "RUNNING": ("running",)}


def recorded_outcome(status: str, tag: str | None) -> str:
    """The outcome of a run that ended with status: its tag where that status allows it, else the status's own
    (FINISHED ok, FAILED failed, KILLED interrupted: stopped by a signal the harness handled)."""
    allowed = OUTCOMES_BY_STATUS.get(status, ("failed",))
    return tag if tag in allowed else allowed[0]


SWEEP_FILE = "mlflow_sweep.json"  # in Hydra's sweep dir: how a sweep's jobs find their parent run
MANY = 10000  # the most runs one query returns: more than a sweep or an experiment's live runs hold


def newest_sweeps(client, experiment_id: str, sweep_id: str | None = None, max_results: int = 1) -> list:
    """Parent runs of the experiment, newest first; of one sweep id if given."""
    flt = f"tags.`{ROLE}` = 'sweep'" + (f" and tags.`{SWEEP_ID}` = '{sweep_id}'" if sweep_id else "")
    return client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                              max_results=max_results)


def sweeps_with_key(client, experiment_id: str, key: str, running: bool = False) -> list:
    """Parent runs of this very sweep (config.sweep_key), newest first; only RUNNING ones if asked."""
    flt = f"tags.`{ROLE}` = 'sweep' and tags.`{SWEEP_KEY}` = '{key}'"
    flt += " and attributes.status = 'RUNNING'" if running else ""
    return client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                              max_results=MANY)


def finished_runs(client, experiment_id: str, config_hash: str, limit: int = 5) -> list:
    """The latest FINISHED runs of this config in the experiment, newest first."""
    flt = f"tags.`{CONFIG_HASH}` = '{config_hash}' and attributes.status = 'FINISHED'"
    return client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time DESC"],
                              max_results=limit)


def running_runs(client, experiment_id: str) -> list:
    """Every RUNNING run of the experiment (liveness decides which of them are dead)."""
    return client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=MANY)


def jobs_of(client, experiment_id: str, sweep_id: str, job_num: int | None = None, running: bool = True) -> list:
    """Job runs of one sweep (of one Hydra job number, if given): the RUNNING ones, or every attempt."""
    flt = f"tags.`{SWEEP_ID}` = '{sweep_id}' and tags.`{ROLE}` = 'job'"
    flt += f" and tags.`{JOB_NUM}` = '{job_num}'" if job_num is not None else ""
    flt += " and attributes.status = 'RUNNING'" if running else ""
    return client.search_runs([experiment_id], filter_string=flt, order_by=["attributes.start_time ASC"],
                              max_results=MANY)


def children(client, experiment_id: str, parent_id: str) -> list:
    """Every run made under this parent, oldest first (attempts of a resumed sweep included)."""
    return client.search_runs([experiment_id], filter_string=f"tags.`{PARENT}` = '{parent_id}'",
                              order_by=["attributes.start_time ASC"], max_results=MANY)


def matching_jobs(client, experiment_id: str, where: str) -> list:
    """Job runs of the experiment matching an MLflow filter (e.g. "params.model = 'classic'"), every attempt
    (record.attempts says which count).

    MLflow filters take no parentheses, so `where` is joined with `and`.
    """
    return client.search_runs([experiment_id], filter_string=f"tags.`{ROLE}` = 'job' and {where}",
                              order_by=["attributes.start_time ASC"], max_results=MANY)


def read_sweep(sweep_dir: str | Path) -> dict | None:
    """What the sweep told its jobs (its parent run, id and swept keys), None outside a sweep."""
    path = Path(sweep_dir) / SWEEP_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_sweep(sweep_dir: Path, record: dict) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
