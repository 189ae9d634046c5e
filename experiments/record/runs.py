"""One MLflow run: logged through the client, ended FINISHED, FAILED or KILLED whatever happens, and never
ended over a state someone else gave it (a run closed while its process was paused stays closed)."""
from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..errors import disk_full, message
from .client import TrackingUnavailable, raw
from .liveness import iso, me, owner_tags
from .provenance import provenance
from .schema import CAME_BACK, CLOSED, HEARTBEAT, OUTCOME, recorded_outcome
from .session import current
from .store import Tracking


class ClosedElsewhere(Exception):
    """This process's run was ended by another (it was paused longer than the heartbeat timeout, and a sweep
    elsewhere closed it KILLED): it must not go on writing to it, nor end it again."""

log = logging.getLogger(__name__)

MAX_BATCH = 100  # MLflow's limit on params (and tags) per log_batch call


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
        self.outcome_tag: str | None = None  # what the run came to, where its status does not say (collapsed, ...)
        self.write_error: BaseException | None = None  # a background write for this run that failed
        self.session = current()  # its sweep's writer and heartbeat (the writer thread has no session of its own)

    @classmethod
    def create(cls, client: MlflowClient, experiment_id: str, name: str, tags: dict) -> "RunLog":
        tags = {**provenance(), **owner_tags(), **tags}
        run = client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in tags.items()})
        made = cls(client, run.info.run_id, name)
        made.session.heartbeat.add(raw(client), run.info.run_id)
        return made

    def write(self, write: Callable[[], None]) -> None:
        """write() now, or in the background where it is enabled (a failure there ends this run FAILED)."""
        if self.session.background.enabled:
            self.session.background.submit(write, self.failed_write, self.name)
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

    def metrics(self, values: dict, step: int = 0, params: dict | None = None) -> None:
        """values at step, with a heartbeat and any params in the same call (each call is a commit of its own)."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, logged_value(v), now, step) for k, v in values.items()]
        beat = [RunTag(HEARTBEAT, f"{now / 1000:.0f}")]  # a sign of life, in the same call
        also = [Param(k, str(v)) for k, v in (params or {}).items()]
        self.write(lambda: self.client.log_batch(self.run_id, metrics=metrics, params=also, tags=beat))

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

    def still_mine(self) -> None:
        """Raise ClosedElsewhere if another process ended this run. Asked of the store every time (once per epoch:
        one indexed read), right before the writes that follow: a pause can end at any moment, and one shorter than
        the heartbeat interval, long enough for another host to close the run, must not be followed by a write."""
        if self.run_id in self.session.heartbeat.closed or \
                self.client.get_run(self.run_id).info.status != "RUNNING":
            raise ClosedElsewhere(self.closed_by())

    def closed_by(self) -> str:
        tags = self.client.get_run(self.run_id).data.tags
        return f"its run {self.run_id} was ended by another process: {tags.get(CLOSED, 'no reason given')}"

    def end(self, status: str) -> None:
        """End the run with status, unless another process ended it meanwhile: then say plainly that this one
        came back, and leave the run as that process left it."""
        self.session.heartbeat.remove(self.run_id)
        now = self.client.get_run(self.run_id)
        if now.info.status != "RUNNING":
            self.came_back(now.info.status, status)
            return
        # Written with the status, after the last write that could fail: a run whose files did not land ends
        # FAILED and says failed, not the ok its training had earned (the UI's views group and filter by it).
        self.client.set_tag(self.run_id, OUTCOME, recorded_outcome(status, self.outcome_tag))
        self.client.set_terminated(self.run_id, status)

    def came_back(self, left: str, would_be: str) -> None:
        note = (f"{me()} came back at {iso(time.time())} after this run was ended {left} by another process; it "
                f"would have ended it {would_be}, and left it {left}")
        self.client.set_tag(self.run_id, CAME_BACK, note)
        log.warning("run %s: %s", self.run_id, note)


@contextmanager
def tracked_run(tracking: Tracking, name: str, tags: dict, error_dir: Path) -> Iterator[RunLog]:
    """A new run that always ends in a terminal state, whatever its body raises.

    The body completes: run.outcome (FINISHED unless it set FAILED), once its writes have landed (a
    write that failed in the background: FAILED). An exception: FAILED, with error.type and
    error.message tags and the traceback as error.txt (kept in error_dir too). KeyboardInterrupt
    (Ctrl-C, or SIGTERM turned into one) and other BaseExceptions: KILLED, with the outcome and error.message of
    one that has an `outcome` (experiments.launchers.TimeLimit: killed). A full disk: what the body
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
    except ClosedElsewhere:  # it stays as the other process left it; end() would only note that this one came back
        status = None
        run.came_back(run.client.get_run(run.run_id).info.status, "FAILED")
        raise
    except Exception as err:
        status = "FAILED"
        if disk_full(err):
            shutil.rmtree(error_dir, ignore_errors=True)  # partial outputs of a failed run: room for the store
        record_failure(run, err, None if disk_full(err) else error_dir)
        raise
    except BaseException as err:  # KILLED; one that says what the run came to (a time limit: killed) is tagged
        if getattr(err, "outcome", None):
            run.outcome_tag = err.outcome
            record_failure(run, err, None)
        raise
    finally:
        if status == "FINISHED" and run.session.background.enabled:
            run.write(lambda: run.end("FAILED" if run.write_error is not None else "FINISHED"))
        elif status is not None:
            run.session.background.drain()  # what was queued for it lands before it ends
            run.end(status)


def duplicate_row(err: MlflowException) -> bool:
    """A store's unique constraint refused an insert: IntegrityError (sqlite, MySQL) or UniqueViolation (psycopg2)."""
    return "IntegrityError" in err.message or "UniqueViolation" in err.message


def record_failure(run: RunLog, err: BaseException, error_dir: Path | None) -> None:
    """Tag run with the error and keep the traceback as an artifact (error_dir None: tags only), as far
    as that is possible (a failure here must not hide the error itself)."""
    said = message(err, 5000) or type(err).__name__
    try:
        run.tags({"error.type": type(err).__name__, "error.message": said})
        if error_dir is not None:
            error_dir.mkdir(parents=True, exist_ok=True)
            (error_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
            run.client.log_artifact(run.run_id, str(error_dir / "error.txt"))
    except Exception as also:
        log.warning("could not record the error of run %s: %s", run.run_id, message(also, 300))
