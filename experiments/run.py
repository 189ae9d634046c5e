"""python -m experiments.run [-m] model=classic,d2l optim=sgd,adam ...

Each job trains one LeNet variant and tracks it as one MLflow run; a multirun's jobs are the
children of one parent run for the sweep (see experiments.sweep.SweepCallback).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from . import process

if __name__ == "__main__":  # not in a launcher's job process, which imports this module for `main`
    process.quiet_start()  # Ctrl-C during the seconds of imports and checks below: one line, no traceback

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lenet.engine import resolve_device

from .config import CONF_DIR, NOT_IDENTITY, group_choices, override_key, register_resolvers
from .errors import Abort, JobError, one_line
from .job import run_job
from .liveness import close_stale_runs
from .tracking import ROLE, SWEEP_ID, ExperimentDeleted, TrackingUnavailable, connect, disk_full, read_sweep
from .validate import BadInput, check_command

log = logging.getLogger(__name__)


def share_cores() -> None:
    """Jobs running side by side (hydra/launcher=joblib, or SLURM jobs sharing a node) split the cores
    instead of oversubscribing them."""
    concurrent = HydraConfig.get().launcher.get("n_jobs")
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():  # what SLURM gave this job
        torch.set_num_threads(int(os.environ["SLURM_CPUS_PER_TASK"]))
    elif concurrent:
        cores = os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // (cores if concurrent < 0 else concurrent)))


def job_identity() -> tuple[str, dict]:
    """The run's name and tags, from Hydra's view of the job.

    The name is the job's overrides of what it computes (not runs_dir, data.root, ...); in a sweep,
    only those of the swept keys (model=classic,optim=adam), since the rest are the same for every job.
    """
    hc = HydraConfig.get()
    sweep = read_sweep(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    keys = {o: override_key(o) for o in hc.overrides.task}
    computed = [o for o, key in keys.items() if not key.startswith(NOT_IDENTITY)]
    swept = [o for o, key in keys.items() if key in sweep["swept"]] if sweep else []
    name = ",".join(swept or computed) or "defaults"
    tags = {ROLE: "job", "hydra.overrides": " ".join(hc.overrides.task)}
    if sweep:
        tags |= {"mlflow.parentRunId": sweep["run_id"], SWEEP_ID: sweep["sweep_id"], "hydra.job_num": hc.job.num}
    if "SLURM_JOB_ID" in os.environ:  # where to look on the cluster (sacct, the job's log)
        array = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        tags["slurm.job_id"] = "_".join(array) if all(array) else os.environ["SLURM_JOB_ID"]
    return name, tags


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    process.tune()  # a launcher's job process (joblib, submitit) starts here, not in cli()
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":  # a SLURM job, as its own process
        process.handle_signals()  # scancel's SIGTERM ends the run KILLED (submitit would only log it)
    hc = HydraConfig.get()
    name, tags = job_identity()
    out = Path(hc.runtime.output_dir) / "artifacts"
    try:
        if resolve_device(cfg.device).type == "cpu":
            share_cores()
        tracking = connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.server_patience_s)
        if hc.mode == RunMode.RUN:  # a sweep closes dead runs once, at its start (experiments.sweep)
            close_stale_runs(tracking.client, tracking.experiment_id, cfg.mlflow.heartbeat_timeout_s)
        result = run_job(cfg, tracking, name, tags, out, group_choices(hc.runtime.choices))
    except ExperimentDeleted as err:  # every job would be refused the same way
        raise Abort(str(err)) from None
    except TrackingUnavailable as err:  # nothing more can be logged: stop the sweep here
        raise Abort(f"{err} during {name}; what was logged before is kept there: when it answers again, rerun "
                    f"the same command to resume (FINISHED jobs are skipped)") from None
    except Exception as err:  # its run, if it had one, ended FAILED with the traceback as error.txt
        if disk_full(err):  # every later job would fail the same way
            store = cfg.mlflow.tracking_uri.removeprefix("sqlite:///")
            raise Abort(f"{name}: {one_line(err, store)}; free some space, then rerun the same command to resume "
                        f"(FINISHED jobs are skipped)") from None
        log.error("%s failed: %s", name, one_line(err))
        raise JobError(f"{name}: {one_line(err)}") from err
    except KeyboardInterrupt as stop:
        log.warning("%s: KILLED by %s; rerun the same command to resume it", name, stop)
        raise
    return result.objective


def register_plugins() -> None:
    """Hydra finds plugins by listing the folders of the hydra_plugins package, which misses ours in an
    editable install (`pip install -e`, served by an import hook): register it by hand."""
    from hydra.core.plugins import Plugins

    try:
        from hydra_plugins.lenet_sweeps import SlurmLauncher
    except ImportError:  # without the 'slurm' extra there is none
        return
    Plugins.instance().register(SlurmLauncher)


def cli() -> None:
    process.tune()
    register_resolvers()
    register_plugins()
    try:
        check_command(sys.argv[1:])
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    process.handle_signals()
    try:
        main()  # Hydra exits by itself when a job fails
    except process.Interrupted as stop:  # the sweep's parent closes KILLED, with its summary, at exit
        process.fast_exit(stop.exit_code)
    except Abort as stop:
        print(f"error: {stop}", file=sys.stderr)
        process.fast_exit(stop.code)
    process.fast_exit(0)


if __name__ == "__main__":
    # Call the importable module's main, not __main__'s: process launchers (joblib, submitit)
    # pickle the task function, and only a function of an importable module pickles by reference.
    from experiments.run import cli as run_cli

    run_cli()
