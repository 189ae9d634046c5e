"""The sweep's parent MLflow run, opened before Hydra launches the first job and closed after the last."""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import Abort, one_line
from .process import interrupted
from .liveness import OWNER, Heartbeat, close_stale_runs, gone, iso, me, owner_tags
from .tracking import (DIVERGED, ROLE, SWEEP_FILE, SWEEP_ID, SWEPT, ExperimentDeleted, RunLog, Tracking,
                       TrackingUnavailable, absolute, connect, fcntl)

log = logging.getLogger(__name__)

CLAIM = "lenet.claim"  # on a parent run: the launch that owns it now (a server store's claim protocol)
CLAIM_SETTLE_S = 2.0  # how long a launch waits for a rival's claim to land before reading who won


class SweepCallback(Callback):
    """Hydra callback (conf/config.yaml: hydra.callbacks) that makes one parent run per multirun.

    The jobs find the parent through SWEEP_FILE in the sweep dir, which works for any launcher
    whose jobs share the file system (local processes, joblib, submitit). The same sweep command
    runs once at a time against a store: a second launch says so in one line and exits.
    """

    def __init__(self) -> None:
        self.parent: RunLog | None = None
        self.experiment_id = ""
        self.exports = Path("runs/exports")
        self.lock = None  # held open for the sweep's life (a local store's one-at-a-time lock)
        self.tracking_uri = ""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self.start(config)
        except (ExperimentDeleted, TrackingUnavailable) as err:  # their messages say what to do
            raise Abort(str(err)) from None
        except Exception as err:  # Hydra would only warn, then launch the jobs with no parent run to join
            if self.parent is not None:
                with contextlib.suppress(Exception):
                    self.parent.end("FAILED")
            raise Abort(f"the sweep could not start its MLflow record: {one_line(err)}") from None

    def start(self, config: DictConfig) -> None:
        # The summary's modules (pandas, statsmodels, matplotlib) are imported now, not at the end: the
        # parent may be closed from an atexit handler, where threading refuses what they register.
        from . import export  # noqa: F401

        sweep_dir = Path(config.hydra.sweep.dir)
        task = list(config.hydra.overrides.task)
        overrides = " ".join(task) or "(defaults)"
        m = config.mlflow
        self.tracking_uri = absolute(m.tracking_uri)
        self.hold_lock(self.tracking_uri, m.experiment, overrides)
        tracking = connect(self.tracking_uri, m.experiment, m.server_patience_s)
        client, self.experiment_id = tracking
        close_stale_runs(client, self.experiment_id, m.heartbeat_timeout_s)
        swept = [o.get_key_element() for o in OverridesParser.create().parse_overrides(task) if o.is_sweep_override()]
        swept += list(config.hydra.sweeper.get("params") or {})  # a search sweeper's space (hydra/sweeper=search)
        earlier = previous_sweep(client, self.experiment_id, overrides) if config.resume else None
        if earlier is not None and earlier.info.status == "RUNNING":  # alive: stale ones were closed above
            raise Abort(already_running(self.tracking_uri, earlier.data.tags.get(OWNER, "another process")))
        if earlier is not None:  # the same command again: carry on with that sweep's record
            sweep_id = earlier.data.tags[SWEEP_ID]
            self.parent = RunLog(client, earlier.info.run_id)
            client.update_run(earlier.info.run_id, status="RUNNING")
            self.parent.tags(owner_tags())
            Heartbeat.add(getattr(client, "raw", client), earlier.info.run_id)
            log.info("Resuming sweep %s (parent run %s, was %s); resume=false starts afresh",
                     sweep_id, earlier.info.run_id, earlier.info.status)
        else:
            sweep_id = sweep_dir.name  # unique: the directory's name ends in ${unique:}
            self.parent = RunLog.create(
                client, self.experiment_id, f"sweep {overrides}",
                {ROLE: "sweep", SWEEP_ID: sweep_id, "hydra.overrides": overrides, "hydra.sweep_dir": sweep_dir},
            )
            log.info("MLflow sweep %s: parent run %s", sweep_id, self.parent.run_id)
        if self.lock is None:  # no local lock (a tracking server): settle who runs it by a claim
            self.claim(tracking, self.tracking_uri, overrides, created=earlier is None, timeout_s=m.heartbeat_timeout_s)
        self.parent.tags({SWEPT: json.dumps(swept)})
        self.exports = Path(config.runs_dir) / "exports"
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record = {"run_id": self.parent.run_id, "sweep_id": sweep_id, "swept": swept}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
        # A failed job, Ctrl-C or SIGTERM skips on_multirun_end: close the parent at exit regardless.
        atexit.register(self.close, ended=False)

    def hold_lock(self, tracking_uri: str, experiment: str, overrides: str) -> None:
        """On a local store: take this sweep's lock for the life of the process, or Abort if another holds it.

        The kernel drops the lock when its process ends, however it ends (kill -9 included).
        """
        if not tracking_uri.startswith("sqlite:///") or fcntl is None:
            return
        store = Path(tracking_uri.removeprefix("sqlite:///"))
        key = hashlib.sha1(f"{experiment}\n{overrides}".encode()).hexdigest()[:16]
        path = store.with_name(store.name + ".sweeps") / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise Abort(already_running(tracking_uri, holder)) from None
        handle.truncate(0)
        handle.write(f"{me()}, since {iso(time.time())}\n")
        handle.flush()
        self.lock = handle

    def claim(self, tracking: Tracking, tracking_uri: str, overrides: str, created: bool, timeout_s: float) -> None:
        """Two identical launches against a server store at once: each claims the parent, waits for
        the other's claim to land, and only the winner goes on (the earliest parent; on one parent,
        the last claim written). The loser removes a parent it made, and stops in one line."""
        client, parent_id, token = tracking.client, self.parent.run_id, f"{me()}:{uuid.uuid4().hex[:8]}"
        client.set_tag(parent_id, CLAIM, token)
        time.sleep(CLAIM_SETTLE_S)
        mine = client.get_run(parent_id)
        rivals = [r for r in running_sweeps(tracking, overrides) if r.info.run_id != parent_id
                  and gone(r.data.tags, r.info.start_time, timeout_s) is None
                  and (r.info.start_time, r.info.run_id) < (mine.info.start_time, parent_id)]
        if mine.data.tags.get(CLAIM) == token and not rivals:
            return
        if created:
            client.delete_run(parent_id)
        holder = (rivals[0].data.tags if rivals else mine.data.tags).get(OWNER, "another process")
        self.parent = None
        raise Abort(already_running(tracking_uri, holder))

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self.close(ended=True)

    def close(self, ended: bool) -> None:
        """End the parent run: FAILED if a job failed, KILLED if the sweep stopped early, else FINISHED;
        then print the summary of what finished (it never fails the command)."""
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        from .export import job_runs, sweep_summary, where_to_look  # imported at the sweep's start

        try:
            runs = job_runs(parent.client, self.experiment_id, parent.run_id)
            diverged = [r for r in runs if DIVERGED in r.data.tags]  # an outcome of the config, not a crash
            crashed = [r for r in runs if r.info.status != "FINISHED" and DIVERGED not in r.data.tags]
            failed = any(r.info.status == "FAILED" for r in crashed)
            # Stopped early: KILLED by a signal, FAILED by an error (a launcher's, a dead cluster job).
            status = "FINISHED" if ended and not failed else "KILLED" if interrupted() and not failed else "FAILED"
            parent.end(status)
        except TrackingUnavailable:  # the command has said so in its one line; the next sweep closes the parent
            return
        done = sum(r.info.status == "FINISHED" for r in runs)
        try:
            summary = sweep_summary(parent.client, self.experiment_id, parent.run_id, self.exports, runs)
        except Exception as err:  # the runs are safe in MLflow; `python -m experiments.export` can redo this
            summary = f"(summary not written: {one_line(err)}; python -m experiments.export redoes it)"
        log.info("Sweep %s: %d of %d runs finished, %d diverged\n%s", status, done, len(runs), len(diverged), summary)
        for run in diverged + [r for r in crashed if r.info.status == "FAILED"]:  # KILLED ones said so already
            state = "DIVERGED" if DIVERGED in run.data.tags else run.info.status
            log.error("%s: %s %s", run.info.run_name, state, run.data.tags.get("error.message", ""))
        log.info(where_to_look(self.tracking_uri, self.experiment_id, parent.run_id))


def already_running(tracking_uri: str, holder: str) -> str:
    return (f"this sweep is already running against {tracking_uri} ({holder}); wait for it to end, then rerun "
            f"the same command to resume whatever it leaves unfinished")


def running_sweeps(tracking: Tracking, overrides: str) -> list:
    found = tracking.client.search_runs(
        [tracking.experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep' and attributes.status = 'RUNNING'",
        max_results=1000)
    return [r for r in found if r.data.tags.get("hydra.overrides") == overrides]


def previous_sweep(client, experiment_id: str, overrides: str):
    """The latest sweep of this experiment launched with exactly these overrides, if any."""
    sweeps = client.search_runs([experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1000)
    return next((r for r in sweeps if r.data.tags.get("hydra.overrides") == overrides), None)
