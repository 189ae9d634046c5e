"""The sweep's parent MLflow run, opened before Hydra launches the first job and closed after the last."""
from __future__ import annotations

import atexit
import json
import logging
import uuid
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .tracking import DIVERGED, ROLE, SWEEP_FILE, SWEEP_ID, SWEPT, RunLog, connect

log = logging.getLogger(__name__)


class SweepCallback(Callback):
    """Hydra callback (conf/config.yaml: hydra.callbacks) that makes one parent run per multirun.

    The jobs find the parent through SWEEP_FILE in the sweep dir, which works for any launcher
    whose jobs share the file system (local processes, joblib, submitit).
    """

    def __init__(self) -> None:
        self.parent: RunLog | None = None
        self.experiment_id = ""
        self.exports = Path("runs/exports")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        sweep_id = f"{sweep_dir.name}-{uuid.uuid4().hex[:6]}"  # unique even for two sweeps in one second
        client, self.experiment_id = connect(config.mlflow.tracking_uri, config.mlflow.experiment)
        task = list(config.hydra.overrides.task)
        overrides = " ".join(task) or "(defaults)"
        swept = [o.get_key_element() for o in OverridesParser.create().parse_overrides(task) if o.is_sweep_override()]
        swept += list(config.hydra.sweeper.get("params") or {})  # a search sweeper's space (hydra/sweeper=search)
        earlier = previous_sweep(client, self.experiment_id, overrides) if config.resume else None
        if earlier is not None:  # the same command again: carry on with that sweep's record
            sweep_id = earlier.data.tags[SWEEP_ID]
            self.parent = RunLog(client, earlier.info.run_id)
            client.update_run(earlier.info.run_id, status="RUNNING")
            log.info("Resuming sweep %s (parent run %s, was %s); resume=false starts afresh",
                     sweep_id, earlier.info.run_id, earlier.info.status)
        else:
            self.parent = RunLog.create(
                client, self.experiment_id, f"sweep {overrides}",
                {ROLE: "sweep", SWEEP_ID: sweep_id, "hydra.overrides": overrides, "hydra.sweep_dir": sweep_dir},
            )
            log.info("MLflow sweep %s: parent run %s", sweep_id, self.parent.run_id)
        self.parent.tags({SWEPT: json.dumps(swept)})
        self.exports = Path(config.runs_dir) / "exports"
        record = {"run_id": self.parent.run_id, "sweep_id": sweep_id, "swept": swept}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
        # A failed job, Ctrl-C or SIGTERM skips on_multirun_end: close the parent at exit regardless.
        atexit.register(self.close, ended=False)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self.close(ended=True)

    def close(self, ended: bool) -> None:
        """End the parent run: FAILED if a job failed, KILLED if the sweep stopped early, else FINISHED."""
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        from .export import job_runs, sweep_summary  # pandas, scipy, matplotlib: only a sweep's end needs them

        runs = job_runs(parent.client, self.experiment_id, parent.run_id)
        diverged = [r for r in runs if DIVERGED in r.data.tags]  # an outcome of the config, not a crash
        crashed = [r for r in runs if r.info.status != "FINISHED" and DIVERGED not in r.data.tags]
        status = "FAILED" if any(r.info.status == "FAILED" for r in crashed) else "FINISHED" if ended else "KILLED"
        parent.end(status)
        done = sum(r.info.status == "FINISHED" for r in runs)
        try:
            summary = sweep_summary(parent.client, self.experiment_id, parent.run_id, self.exports, runs)
        except Exception as err:  # the runs are safe in MLflow; `python -m experiments.export` can redo this
            summary = f"(summary failed: {type(err).__name__}: {err})"
        log.info("Sweep %s: %d of %d runs finished, %d diverged\n%s", status, done, len(runs), len(diverged), summary)
        for run in diverged + crashed:
            state = "DIVERGED" if DIVERGED in run.data.tags else run.info.status
            log.error("%s: %s %s", run.info.run_name, state, run.data.tags.get("error.message", ""))


def previous_sweep(client, experiment_id: str, overrides: str):
    """The latest sweep of this experiment launched with exactly these overrides, if any."""
    sweeps = client.search_runs([experiment_id], filter_string=f"tags.`{ROLE}` = 'sweep'",
                                order_by=["attributes.start_time DESC"], max_results=1000)
    return next((r for r in sweeps if r.data.tags.get("hydra.overrides") == overrides), None)
