"""The sweep's parent MLflow run, opened before Hydra launches the first job and closed after the last."""
from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .cli import interrupted
from .config import recipe_keys, sweep_key
from .errors import Abort, one_line
from .record import room
from .record.attempts import counted, sweep_runs
from .record.client import AccessDenied, TrackingUnavailable, raw
from .record.exclusive import AlreadyRunning, SweepGuard
from .record.liveness import close_stale_runs, close_sweep_runs, iso, me, owner_tags
from .record.runs import RunLog
from .record.schema import (CAME_BACK, CLOSED, DIVERGED, OVERRIDES, OWNER, RESUMED, ROLE, SWEEP_ID, SWEEP_KEY, SWEPT,
                            sweeps_with_key, write_sweep)
from .record.session import Session, current
from .record.store import ExperimentDeleted, absolute, connect, damage, sqlite_path

log = logging.getLogger(__name__)


class SweepCallback(Callback):
    """Hydra callback (conf/config.yaml: hydra.callbacks) that makes one parent run per multirun.

    The jobs find the parent through the sweep file in the sweep dir, which works for any launcher
    whose jobs share the file system (local processes, joblib, submitit). The same sweep runs once
    at a time against a store (record.exclusive): a second launch says so in one line and exits.
    Hydra calls on_multirun_end only when every job returned; the run command closes a sweep that
    ended otherwise (a failed job, Ctrl-C, an Abort) with close_open. What it opened is noted on the
    sweep's session (record.session), which Hydra, instantiating the callback, cannot hand it.
    """

    def __init__(self) -> None:
        self.session = current()
        self.parent: RunLog | None = None
        self.experiment_id = ""
        self.exports = Path("runs/exports")
        self.guard: SweepGuard | None = None  # held for the sweep's life (a local store's lock)
        self.tracking_uri = ""
        self.sweep_id = ""
        self.correction = "holm"
        self.room: Path | None = None  # set aside beside a local store for the parent's end (record.room)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self.start(config)
        except (ExperimentDeleted, TrackingUnavailable, AccessDenied, AlreadyRunning) as err:  # they say what to do
            raise Abort(str(err)) from None
        except Exception as err:  # Hydra would only warn, then launch the jobs with no parent run to join
            if self.parent is not None:
                with contextlib.suppress(Exception):
                    self.parent.end("FAILED")
            raise Abort(f"the sweep could not start its MLflow record: {one_line(err)}") from None

    def start(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        task = list(config.hydra.overrides.task)
        overrides = " ".join(task) or "(defaults)"
        m = config.mlflow
        self.tracking_uri = absolute(m.tracking_uri)
        key = sweep_key(m.experiment, task)
        self.session.heartbeat.interval_s = m.heartbeat_s
        self.guard = SweepGuard(self.tracking_uri, sqlite_path(self.tracking_uri), key, m.claim_settle_s)
        self.room = room.set_aside(sqlite_path(self.tracking_uri), key)
        client, self.experiment_id = connect(self.tracking_uri, m.experiment, m.server_patience_s)
        close_stale_runs(client, self.experiment_id, m.heartbeat_timeout_s)
        swept = [o.get_key_element().lstrip("+~") for o in OverridesParser.create().parse_overrides(task)
                 if o.is_sweep_override()]
        swept += list(config.hydra.sweeper.get("params") or {})  # a search sweeper's space (hydra/sweeper=search)
        earlier = next(iter(sweeps_with_key(client, self.experiment_id, key)), None) if config.resume else None
        if earlier is not None and earlier.info.status == "RUNNING":  # alive: stale ones were closed above
            raise AlreadyRunning(self.tracking_uri, earlier.data.tags.get(OWNER, "another process"))
        if earlier is not None:  # the same sweep again: carry on with that sweep's record
            sweep_id = earlier.data.tags[SWEEP_ID]
            self.guard.settle(client, self.experiment_id, earlier.info.run_id, False, m.heartbeat_timeout_s)
            self.parent = RunLog(client, earlier.info.run_id)
            client.update_run(earlier.info.run_id, status="RUNNING")
            self.parent.tags(owner_tags() | {RESUMED: f"at {iso(time.time())} by {me()}, after it had ended "
                                             f"{earlier.info.status}"})
            for past in (CLOSED, CAME_BACK):  # how it last ended is history now: RESUMED says it
                if past in earlier.data.tags:
                    client.delete_tag(earlier.info.run_id, past)
            self.session.heartbeat.add(raw(client), earlier.info.run_id)
            log.info("Resuming sweep %s (parent run %s, was %s); resume=false starts afresh",
                     sweep_id, earlier.info.run_id, earlier.info.status)
        else:
            sweep_id = sweep_dir.name  # unique: the directory's name ends in ${unique:}
            self.parent = RunLog.create(client, self.experiment_id, sweep_name(swept), {
                ROLE: "sweep", SWEEP_ID: sweep_id, SWEEP_KEY: key, OVERRIDES: overrides,
                "hydra.sweep_dir": sweep_dir})
            log.info("MLflow sweep %s: parent run %s", sweep_id, self.parent.run_id)
            try:
                self.guard.settle(client, self.experiment_id, self.parent.run_id, True, m.heartbeat_timeout_s)
            except AlreadyRunning:
                self.parent = None  # removed: the other launch runs this sweep
                raise
        self.parent.tags({SWEPT: json.dumps(swept)})
        self.exports = Path(config.runs_dir) / "exports"
        self.correction = config.correction
        self.sweep_id = sweep_id
        write_sweep(sweep_dir, {"run_id": self.parent.run_id, "sweep_id": sweep_id, "swept": swept, "owner": me()})
        self.session.opened = self
        self.session.sweep_id, self.session.parent_run_id = sweep_id, self.parent.run_id

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self.close(ended=True)

    def end_parent(self, parent: RunLog, ended: bool) -> tuple[str, list, list]:
        """End the parent run as its jobs' runs that count ended (record.attempts); the status, those runs, and
        every run the sweep holds (superseded attempts too: the summary lists them)."""
        if not ended:  # stopped early: no job of it stays RUNNING (a parallel launcher's stopped or dead workers)
            why = "the sweep was interrupted" if interrupted() else "the sweep stopped early"
            close_sweep_runs(parent.client, self.experiment_id, self.sweep_id, why,
                             outcome="interrupted" if interrupted() else "killed")
        every = sweep_runs(parent.client, self.experiment_id, parent.run_id)
        runs = counted(every)
        failed = any(r.info.status == "FAILED" and DIVERGED not in r.data.tags for r in runs)
        # Stopped early: KILLED by a signal, FAILED by an error (a launcher's, a dead cluster job).
        status = "FINISHED" if ended and not failed else "KILLED" if interrupted() and not failed else "FAILED"
        parent.end(status)
        return status, runs, every

    def close(self, ended: bool) -> None:
        """End the parent run: FAILED if a job failed, KILLED if the sweep stopped early, else FINISHED;
        then print the summary of what finished (it never fails the command)."""
        self.session.opened = None
        parent, self.parent = self.parent, None
        self.session.background.drain()  # the last jobs' runs end (FINISHED once their files are in) before a read
        room.give_back(self.room)  # after their last writes, which may have filled the disk: room for this end
        if parent is None:
            return
        broken = damage(self.tracking_uri)
        if broken is not None:  # written over by another program meanwhile: this end would only add to the damage
            self.session.unended = parent.run_id
            raise Abort(f"the MLflow store {self.tracking_uri} is damaged ({broken}): another program wrote to it "
                        f"during the sweep; nothing more was written to it. Restore it from a copy, or move it aside "
                        f"and rerun to start a new one")
        try:
            status, runs, every = self.end_parent(parent, ended)
        except TrackingUnavailable:  # the command has said so in its one line; the next sweep closes the parent
            return
        except Exception as err:
            log.error("the sweep's parent run %s could not be ended (%s); the next sweep on this store closes it",
                      parent.run_id, one_line(err, self.tracking_uri))
            self.session.unended = parent.run_id
            return
        diverged = [r for r in runs if DIVERGED in r.data.tags]  # an outcome of the config, not a crash
        crashed = [r for r in runs if r.info.status != "FINISHED" and DIVERGED not in r.data.tags]
        from .analysis.view import where_to_look

        done, view = sum(r.info.status == "FINISHED" for r in runs), None
        try:
            from .analysis.brief import brief  # the statistics load only now: a memory cap may refuse them
            from .analysis.report import sweep_summary

            full, view, self.session.result = sweep_summary(parent.client, self.experiment_id, parent.run_id,
                                                            self.exports, every, self.correction)
            summary = brief(self.session.result, str(self.exports / self.sweep_id / "summary.md"))
            self.session.full_summary = full
        except Exception as err:  # MemoryError too: the runs are safe in MLflow; `experiments.export` redoes this
            summary = f"(summary not written: {one_line(err)}; python -m experiments.export redoes it)"
        self.session.summary = summary
        log.info("Sweep %s: %d of %d runs finished, %d diverged\n%s", status, done, len(runs), len(diverged), summary)
        for run in crashed:  # a diverged run's line is the summary's; a KILLED one said so already
            if run.info.status == "FAILED":
                log.error("%s: FAILED %s", run.info.run_name, run.data.tags.get("error.message", ""))
        log.info(where_to_look(self.tracking_uri, self.experiment_id, parent.run_id, view))


def close_open(session: Session) -> None:
    """Close the sweep the session opened, if Hydra did not (the sweep stopped before its end)."""
    if session.opened is not None:
        session.opened.close(ended=False)


def sweep_name(swept: list[str]) -> str:
    """A parent run's name a person reads: when, and what it sweeps (the keys; no values, no paths)."""
    factors = recipe_keys(swept)
    what = " x ".join(factors) or "one recipe"
    return f"{time.strftime('%Y-%m-%d %H:%M')} {what}" + (", seeds" if "seed" in swept else "")
