"""MLflow tracking: one run per job, one parent run per sweep, with the jobs as nested children."""
from __future__ import annotations

import contextlib
import errno
import functools
import getpass
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .config import PROJECT_ROOT
from .liveness import HEARTBEAT, Heartbeat, owner_tags
from .stores import check_store

log = logging.getLogger(__name__)

ROLE = "lenet.role"  # "sweep" on a sweep's parent run, "job" on each job's run
SWEEP_ID = "lenet.sweep_id"
DIVERGED = "lenet.diverged"  # on a run whose training loss became nan or inf: the epoch it stopped at
SWEPT = "lenet.swept"  # on a sweep's parent: JSON list of the keys it sweeps (its factors, and seed)
GIT_DIRTY = "lenet.git_dirty"  # "true" when the checkout had uncommitted changes to tracked files
CONFIG_HASH = "lenet.config_hash"  # identity of the job's resolved config (experiments.config.config_hash)
REUSED = "lenet.reused."  # + run id, on a resumed sweep's parent: a FINISHED run of another sweep it counts
SWEEP_FILE = "mlflow_sweep.json"  # in Hydra's sweep dir: how the jobs find their parent run
MAX_BATCH = 100  # MLflow's limit on params (and tags) per log_batch call


class Tracking(NamedTuple):
    """Where runs go: a client and the id of the experiment they belong to."""

    client: MlflowClient
    experiment_id: str


def connect(tracking_uri: str, experiment: str, patience_s: float = 120) -> Tracking:
    """A client for tracking_uri and the id of experiment, created if missing.

    A new experiment on a local store keeps its artifacts beside the store (under runs/), not in
    whatever directory the command happened to start in; a store moved or copied with its
    artifacts is pointed at them where it now is (relocate). A tracking server gets a PatientClient:
    an outage of up to patience_s (a restart) is waited out, a longer one raises TrackingUnavailable.
    """
    tracking_uri = absolute(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return get_or_create(PatientClient(tracking_uri, patience_s), experiment, None)
    if not tracking_uri.startswith("sqlite:///"):
        return get_or_create(MlflowClient(tracking_uri=tracking_uri), experiment, None)
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    store.parent.mkdir(parents=True, exist_ok=True)
    # Processes that open a new store at once race on creating its schema and the experiment:
    # one at a time here. WAL lets concurrent jobs write while others read.
    with exclusive(store.with_name(store.name + ".lock")):
        client = MlflowClient(tracking_uri=tracking_uri)
        relocate(store)
        found = get_or_create(client, experiment, (store.parent / "mlartifacts" / experiment).as_uri())
        with sqlite3.connect(store) as db:
            db.execute("PRAGMA journal_mode=WAL")
    return found


def absolute(tracking_uri: str) -> str:
    """A local store's URI with an absolute path (runs_dir=myruns): MLflow makes no artifact URI from a
    relative one, and a printed `mlflow ui --backend-store-uri` must work from any directory."""
    if not tracking_uri.startswith("sqlite:///"):
        return tracking_uri
    return "sqlite:///" + os.path.abspath(tracking_uri.removeprefix("sqlite:///"))


ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"))


def relocate(store: Path) -> list[str]:
    """Point a local store that was moved or copied, with its mlartifacts/ beside it, at that mlartifacts/.

    MLflow records artifact places as absolute file URIs, so a runs/ moved elsewhere would keep
    reading and writing the old place. Only URIs under an old `.../mlartifacts/` (the layout this
    harness makes) are rewritten, and only when mlartifacts/ exists beside the store; returns the
    old roots. Call it holding the store's lock.
    """
    here = store.parent / "mlartifacts"
    if not here.is_dir():
        return []
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return []
        roots = set()
        for (location,) in db.execute("SELECT artifact_location FROM experiments"):
            if (location or "").startswith("file://") and "/mlartifacts/" in location:
                root = location[: location.rindex("/mlartifacts/") + len("/mlartifacts")]
                if root != here.as_uri():
                    roots.add(root)
        for root in roots:
            for table, column in ARTIFACT_COLUMNS:
                if table in tables:
                    db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                               f"WHERE substr({column}, 1, ?) = ?", (here.as_uri(), len(root) + 1, len(root) + 1,
                                                                    root + "/"))
            log.warning("this store was moved or copied from %s: its artifacts are read and written in %s now",
                        root.removeprefix("file://"), here)
    return sorted(roots)


class ExperimentDeleted(LookupError):
    """The experiment is in MLflow's trash (the UI's Delete): no run can be added until it is restored."""


class TrackingUnavailable(Exception):
    """The tracking server stopped answering for longer than the patience allowed."""


class PatientClient:
    """An MlflowClient for a tracking server whose calls wait out an outage of up to patience_s.

    MLflow's own client retries a dead server for about 20 minutes (7 retries with doubling
    waits, 120 s timeouts); here each request is tried once with a 30 s timeout and the waiting
    is this class's: 1, 2, 4, ... 10 s between tries until patience_s have passed since the first
    failure. Once one client has given up on a server, every client of this process fails at once
    for it: a sweep stops in one line instead of waiting again for each job.
    """

    given_up: set[str] = set()

    def __init__(self, uri: str, patience_s: float):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        self.raw, self.uri, self.patience_s = MlflowClient(tracking_uri=uri), uri, patience_s

    def __getattr__(self, name: str):
        attr = getattr(self.raw, name)
        if not callable(attr):
            return attr
        return functools.partial(self.call, attr)

    def call(self, method, *args, **kwargs):
        deadline, wait = None, 1.0
        while True:
            if self.uri in self.given_up:
                raise TrackingUnavailable(self.gave_up())
            try:
                return method(*args, **kwargs)
            except MlflowException as err:
                if not no_answer(err):
                    raise
                log.debug("%s: %s", getattr(method, "__name__", method), " ".join(str(err).split())[:300])
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.patience_s
                    log.warning("the MLflow tracking server at %s does not answer; waiting up to %.0f s for it",
                                self.uri, self.patience_s)
                if now >= deadline:
                    self.given_up.add(self.uri)
                    raise TrackingUnavailable(self.gave_up()) from None
                time.sleep(min(wait, deadline - now))
                wait = min(wait * 2, 10.0)

    def gave_up(self) -> str:
        return f"the MLflow tracking server at {self.uri} stopped answering and was not back within " \
               f"{self.patience_s:.0f} s (mlflow.server_patience_s)"


def no_answer(err: MlflowException) -> bool:
    """Whether err says the server did not answer (refused, reset, timed out, 5xx), not that it refused the call."""
    text = str(err)
    return text.startswith("API request to") and (" failed with exception" in text or "timeout" in text)


def open_experiment(tracking_uri: str, experiment: str, option: str = "--tracking-uri") -> Tracking:
    """A client and the id of an existing experiment, for commands that read runs: unlike connect,
    it never creates a store or an experiment, so a typo leaves nothing behind; LookupError otherwise."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        raise LookupError(f"no MLflow store at {tracking_uri}; run a sweep first, or set {option}")
    check_store(tracking_uri, option)
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none yet"
        raise LookupError(f"no experiment {experiment!r} at {tracking_uri}; experiments there: {names}")
    return Tracking(client, found.experiment_id)


EXPERIMENT_TAGS = {
    # What MLflow 3's UI reads to open an experiment on its runs rather than its GenAI view (traces,
    # token usage). MLflow 3.17's UI follows its GenAI / Model training switch instead, so the links the
    # sweep prints carry ?workflowType=machine_learning (export.where_to_look).
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": ("LeNet variants trained by lenet-sweeps. Each sweep is a parent run, named sweep "
                            "and its overrides, whose description holds the comparison (tables, tests, "
                            "the factorial model); its jobs are its children, one run per config and seed."),
}


def get_or_create(client: MlflowClient, experiment: str, artifact_location: str | None) -> Tracking:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return Tracking(client, client.create_experiment(experiment, artifact_location=artifact_location,
                                                             tags=EXPERIMENT_TAGS))
        except MlflowException as err:
            # Another sweep created it since we looked (both started at once on a new server): use theirs.
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(experiment)
    if found.lifecycle_stage == "deleted":  # MLflow refuses new runs in it; its own message names no way out
        uri = client.tracking_uri
        raise ExperimentDeleted(
            f"the MLflow experiment {experiment!r} at {uri} was deleted (its runs are kept until the store is "
            f"cleaned up); restore it with `MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id "
            f"{found.experiment_id}`, or name another with mlflow.experiment=NAME")
    for key, value in EXPERIMENT_TAGS.items():  # experiments made before, or elsewhere: what the user set stays
        if key not in found.tags:
            client.set_experiment_tag(found.experiment_id, key, value)
    return Tracking(client, found.experiment_id)


@contextmanager
def exclusive(lock_path: Path):
    """An exclusive lock across processes on this machine (a no-op where fcntl is missing)."""
    with open(lock_path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


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
    unless the body says otherwise (a diverged run ends FAILED).
    """

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self.outcome = "FINISHED"

    @classmethod
    def create(cls, client: MlflowClient, experiment_id: str, name: str, tags: dict) -> "RunLog":
        tags = {**git_state(), **owner_tags(), **SOURCE_TAGS, "mlflow.user": user(), **tags}
        run = client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in tags.items()})
        Heartbeat.add(getattr(client, "raw", client), run.info.run_id)
        return cls(client, run.info.run_id)

    def params(self, params: dict) -> None:
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_BATCH])

    def tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def metrics(self, values: dict, step: int = 0) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, logged_value(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics,
                              tags=[RunTag(HEARTBEAT, f"{now / 1000:.0f}")])  # a sign of life, in the same call

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


def read_sweep(sweep_dir: str | Path) -> dict | None:
    path = Path(sweep_dir) / SWEEP_FILE
    return json.loads(path.read_text()) if path.exists() else None


def finished_run(tracking: Tracking, config_hash: str):
    """The latest FINISHED run of this config in the experiment, if any."""
    flt = f"tags.`{CONFIG_HASH}` = '{config_hash}' and attributes.status = 'FINISHED'"
    found = tracking.client.search_runs([tracking.experiment_id], filter_string=flt,
                                        order_by=["attributes.start_time DESC"], max_results=1)
    return found[0] if found else None


@contextmanager
def tracked_run(tracking: Tracking, name: str, tags: dict, error_dir: Path) -> Iterator[RunLog]:
    """A new run that always ends in a terminal state, whatever its body raises.

    The body completes: run.outcome (FINISHED unless it set FAILED). An exception: FAILED, with
    error.type and error.message tags and the traceback as error.txt (kept in error_dir too).
    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) and other BaseExceptions: KILLED.
    A full disk: what the body wrote to error_dir is removed first, so that the store can record
    the end. A tracking server that is gone cannot be told anything: the run is left for the
    next sweep to close (experiments.liveness).
    """
    run = RunLog.create(tracking.client, tracking.experiment_id, name, tags)
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
        if status is not None:
            run.end(status)


def duplicate_row(err: MlflowException) -> bool:
    """A store's unique constraint refused an insert: IntegrityError (sqlite, MySQL) or UniqueViolation (psycopg2)."""
    return "IntegrityError" in err.message or "UniqueViolation" in err.message


def disk_full(err: BaseException) -> bool:
    return getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in str(err)


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
