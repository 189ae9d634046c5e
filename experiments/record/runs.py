"""One MLflow run: logged through the client, ended FINISHED, FAILED or KILLED whatever happens, with
where its code came from and who ran it."""
from __future__ import annotations

import functools
import getpass
import json
import logging
import os
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..config import PROJECT_ROOT
from ..errors import disk_full
from .client import TrackingUnavailable, raw
from .finishing import BACKGROUND
from .liveness import Heartbeat, owner_tags
from .schema import GIT_DIRTY, HEARTBEAT
from .store import Tracking

log = logging.getLogger(__name__)

MAX_BATCH = 100  # MLflow's limit on params (and tags) per log_batch call
SOURCE_TAGS = {"mlflow.source.name": "python -m experiments.run", "mlflow.source.type": "LOCAL"}


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return str(os.getuid())


@functools.cache  # one lookup per process, not one per run
def git_state() -> dict[str, str]:
    """The commit the code came from and whether the checkout has uncommitted changes, as run tags."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:  # not a git checkout (an sdist, a copied tree): nothing to record
        return {}
    changes = git("status", "--porcelain", "--untracked-files=no")  # edits to tracked files only
    return {"mlflow.source.git.commit": commit, GIT_DIRTY: "unknown" if changes is None else str(bool(changes)).lower()}


def logged_value(value) -> float:
    """A metric as it is logged: a Python float rounded to 6 decimals (a float32 accuracy of 0.924
    would otherwise show as 0.92400002479553 in MLflow's tables)."""
    return round(float(value), 6)


class RunLog:
    """One MLflow run, logged through the client (no global 'active run' state).

    outcome is the status the run ends with when its body completes (tracked_run): FINISHED
    unless the body says otherwise (a diverged run ends FAILED). Where another job follows in this
    process, writes go through the background writer (record.finishing) in their order, and the
    run ends after the last of them.
    """

    def __init__(self, client: MlflowClient, run_id: str, name: str = "", error_dir: Path | None = None):
        self.client, self.run_id, self.name, self.error_dir = client, run_id, name, error_dir
        self.outcome = "FINISHED"
        self.write_error: BaseException | None = None  # a background write for this run that failed

    @classmethod
    def create(cls, client: MlflowClient, experiment_id: str, name: str, tags: dict) -> "RunLog":
        tags = {**git_state(), **owner_tags(), **SOURCE_TAGS, "mlflow.user": user(), **tags}
        run = client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in tags.items()})
        Heartbeat.add(raw(client), run.info.run_id)
        return cls(client, run.info.run_id, name)

    def write(self, write: Callable[[], None]) -> None:
        """write() now, or in the background where it is enabled (a failure there ends this run FAILED)."""
        if BACKGROUND.enabled:
            BACKGROUND.submit(write, self.failed_write, self.name)
        else:
            write()

    def failed_write(self, err: BaseException) -> None:
        err.store = self.client.tracking_uri  # for a one-line "the store's disk is full"
        if self.write_error is None:
            self.write_error = err
            if disk_full(err) and self.error_dir is not None:
                shutil.rmtree(self.error_dir, ignore_errors=True)  # its partial outputs: room for the store
            record_failure(self, err, None)

    def params(self, params: dict) -> None:
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_BATCH])

    def tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def metrics(self, values: dict, step: int = 0) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, logged_value(v), now, step) for k, v in values.items()]
        beat = [RunTag(HEARTBEAT, f"{now / 1000:.0f}")]  # a sign of life, in the same call
        self.write(lambda: self.client.log_batch(self.run_id, metrics=metrics, tags=beat))

    def dataset(self, name: str, digest: str, source: dict, schema: dict, profile: dict) -> None:
        """The run's input dataset (MLflow's Dataset column), used for training."""
        dataset = Dataset(name, digest, "local", json.dumps(source), json.dumps(schema), json.dumps(profile))
        inputs = [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException as err:
            # MLflow looks the dataset up, then inserts it if missing: a job of the same sweep inserting it in
            # between makes ours break the store's unique constraint. By then the row is there to be found.
            if not duplicate_row(err):
                raise
            self.client.log_inputs(self.run_id, inputs)

    def artifacts(self, folder: Path) -> None:
        self.client.log_artifacts(self.run_id, str(folder))

    def end(self, status: str) -> None:
        Heartbeat.remove(self.run_id)
        self.client.set_terminated(self.run_id, status)


@contextmanager
def tracked_run(tracking: Tracking, name: str, tags: dict, error_dir: Path) -> Iterator[RunLog]:
    """A new run that always ends in a terminal state, whatever its body raises.

    The body completes: run.outcome (FINISHED unless it set FAILED), once its writes have landed (a
    write that failed in the background: FAILED). An exception: FAILED, with error.type and
    error.message tags and the traceback as error.txt (kept in error_dir too). KeyboardInterrupt
    (Ctrl-C, or SIGTERM turned into one) and other BaseExceptions: KILLED. A full disk: what the body
    wrote to error_dir is removed first, so that the store can record the end. A tracking server that
    is gone cannot be told anything: the run is left for the next sweep to close (record.liveness).
    """
    run = RunLog.create(tracking.client, tracking.experiment_id, name, tags)
    run.error_dir = error_dir
    status = "KILLED"
    try:
        yield run
        status = run.outcome
    except TrackingUnavailable:
        status = None
        raise
    except Exception as err:
        status = "FAILED"
        if disk_full(err):
            shutil.rmtree(error_dir, ignore_errors=True)  # partial outputs of a failed run: room for the store
        record_failure(run, err, None if disk_full(err) else error_dir)
        raise
    finally:
        if status == "FINISHED" and BACKGROUND.enabled:
            run.write(lambda: run.end("FAILED" if run.write_error is not None else "FINISHED"))
        elif status is not None:
            BACKGROUND.drain()  # what was queued for it lands before it ends
            run.end(status)


def duplicate_row(err: MlflowException) -> bool:
    """A store's unique constraint refused an insert: IntegrityError (sqlite, MySQL) or UniqueViolation (psycopg2)."""
    return "IntegrityError" in err.message or "UniqueViolation" in err.message


def record_failure(run: RunLog, err: Exception, error_dir: Path | None) -> None:
    """Tag run with the error and keep the traceback as an artifact (error_dir None: tags only), as far
    as that is possible (a failure here must not hide the error itself)."""
    message = " ".join(str(err).split()) or type(err).__name__
    try:
        run.tags({"error.type": type(err).__name__, "error.message": message[:5000]})
        if error_dir is not None:
            error_dir.mkdir(parents=True, exist_ok=True)
            (error_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
            run.client.log_artifact(run.run_id, str(error_dir / "error.txt"))
    except Exception as also:
        log.warning("could not record the error of run %s: %s", run.run_id, " ".join(str(also).split())[:300])
