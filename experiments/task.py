"""The Hydra task: what runs for each job Hydra launches (`main`, under `@hydra.main`), in this process or in a
launcher's job process, and what `launch` does around Hydra's run or sweep in this process.

`main` is a thin wrapper around `experiments.job.run_job`: Hydra's view of the job (its name, recipe, sweep
and tags) in, one MLflow run out, every failure as one line. Process launchers (joblib, submitit) pickle it by
reference, so it lives in an importable module that imports no command.
"""
from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lenet.engine import resolve_device

from . import cli, cores, launchers
from .config import (CONF_DIR, NOT_IDENTITY, config_terms, group_choices, override_key, prepare_hydra, recipe,
                     recipe_keys)
from .errors import Abort, JobError, disk_full, one_line
from .job import run_job
from .record.client import AccessDenied, TrackingUnavailable
from .record.liveness import close_stale_runs
from .record.runs import ClosedElsewhere
from .record.schema import CELL, CLOSED, JOB_NUM, OVERRIDES, OWNER, PARENT, ROLE, SWEEP_ID, read_sweep
from .record.session import Session, current
from .record.store import ExperimentDeleted, connect
from .sweep import close_open
from .validate import check_command

log = logging.getLogger(__name__)


def job_identity(cfg: DictConfig) -> tuple[str, str, dict]:
    """The run's name, its recipe (cell) and its tags, from Hydra's view of the job.

    In a sweep a job is named by its values of the swept keys (classic+adam, and seed 1 if seeds are swept: the
    keys are in its params), and its recipe is those values but the seed; a single run is named by its overrides
    of what it computes (not runs_dir, data.root, ...), its recipe by its model and optimizer.
    """
    hc = HydraConfig.get()
    sweep = read_sweep(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    swept = recipe_keys(sweep["swept"] if sweep else [])
    choices = group_choices(hc.runtime.choices)  # a config group's value is its option's name (classic)
    values = [choices[key] if key in choices else OmegaConf.select(cfg, key) for key in swept]
    cell = recipe(swept, values) if swept else f"{choices['model']}+{choices['optim']}"
    if sweep:
        name = cell + (f" seed {cfg.seed}" if "seed" in sweep["swept"] else "")
    else:
        keys = {o: override_key(o) for o in hc.overrides.task}
        name = ",".join(o for o, key in keys.items() if not key.startswith(NOT_IDENTITY)) or "defaults"
    tags = {ROLE: "job", OVERRIDES: " ".join(hc.overrides.task), **launchers.scheduler_tags()}
    if sweep:
        tags |= {PARENT: sweep["run_id"], SWEEP_ID: sweep["sweep_id"], JOB_NUM: hc.job.num}
    return name, cell, tags


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    cli.tune()  # a launcher's job process (joblib, submitit) starts here, not in command()
    if not cli.handling():  # a launcher's job process: SIGTERM (scancel, a time limit, joblib) ends its run KILLED
        cli.handle_signals()  # (a submitit job took them as it started: launchers.take_signals)
    launchers.take_time_limit(HydraConfig.get().launcher)  # in a SLURM job only
    cli.quiet_log_failures()  # the job's log file, which Hydra has just opened
    hc = HydraConfig.get()
    name, cell, tags = job_identity(cfg)
    out = Path(hc.runtime.output_dir) / "artifacts"
    # The next job of a basic sweep runs in this process: this job's last writes can wait for it (record.finishing),
    # where it trains on a GPU. On a CPU the writer would take the cores training uses: measured on 2 cores, the
    # main sweep took 55.0-78.5 s with it against 50.6-52.7 s without (BENCHMARKS.md).
    # (Through its module: a process launcher pickles this function with what it names, and the writer has locks.)
    device, session = resolve_device(cfg.device).type, current()
    session.background.enabled = hc.mode == RunMode.MULTIRUN and hc.launcher._target_.endswith(
        ".BasicLauncher") and device == "cuda"
    try:
        session.background.raise_fatal()  # the previous job's writes found the disk full, or the server gone
        if device == "cpu":
            cores.share_cores(hc.launcher.get("n_jobs"))
        session.heartbeat.interval_s = cfg.mlflow.heartbeat_s
        tracking = connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.server_patience_s)
        if hc.mode == RunMode.RUN:  # a sweep closes dead runs once, at its start (experiments.sweep)
            close_stale_runs(tracking.client, tracking.experiment_id, cfg.mlflow.heartbeat_timeout_s)
        else:
            still_this_sweeps(tracking, read_sweep(hc.sweep.dir), name)
            launchers.supersede_earlier_attempts(tracking, tags)
        result = run_job(cfg, tracking, name, tags, out, group_choices(hc.runtime.choices) | {CELL: cell})
        session.job_runs.append((tracking.client.tracking_uri, result.run_id))
    except (ExperimentDeleted, AccessDenied) as err:  # every job would be refused the same way
        raise Abort(str(err)) from None
    except ClosedElsewhere as err:  # this process was paused past the heartbeat timeout: its sweep is not its own
        raise Abort(f"{name}: {err}; this process was paused (suspended, stopped) for longer than the heartbeat "
                    f"timeout, so it stops here and leaves the record as it is; rerun the same command to "
                    f"resume") from None
    except TrackingUnavailable as err:  # nothing more can be logged: stop the sweep here
        raise stopped(err, name, cfg.mlflow.tracking_uri) from None
    except Exception as err:  # its run, if it had one, ended FAILED with the traceback as error.txt
        if disk_full(err):  # every later job would fail the same way
            raise stopped(err, name, cfg.mlflow.tracking_uri) from None
        log.error("%s failed: %s", name, config_terms(one_line(err)))
        raise JobError(f"{name}: {config_terms(one_line(err))}") from err
    except KeyboardInterrupt as stop:
        log.warning("%s: KILLED by %s; rerun the same command to resume it", name, cli.signal_name(stop))
        raise
    except launchers.TimeLimit as limit:  # its run ended KILLED; the sweep's job goes on to the next
        log.error("%s: %s", name, limit)
        raise JobError(f"{name}: {limit}") from None
    return result.objective


def still_this_sweeps(tracking, sweep: dict | None, name: str) -> None:
    """ClosedElsewhere if the sweep's parent run was closed, or taken up by another launch, while this sweep
    was paused: its jobs must not run on under a parent that is no longer theirs."""
    if sweep is None or "owner" not in sweep:
        return
    parent = tracking.client.get_run(sweep["run_id"])
    owner = parent.data.tags.get(OWNER)
    if parent.info.status != "RUNNING" or owner != sweep["owner"]:
        raise ClosedElsewhere(f"its sweep's parent run {sweep['run_id']} is {parent.info.status}, owned by {owner}: "
                              f"{parent.data.tags.get(CLOSED, 'taken up by another launch')}")


def stopped(err: Exception, name: str, store: str) -> Abort:
    """The one line that stops a sweep which cannot go on: a gone server, or a full disk (found by the job
    named, or by the background writes of the job in err.job)."""
    name = getattr(err, "job", "") or name
    if isinstance(err, TrackingUnavailable):
        return Abort(f"{err} during {name}; what was logged before is kept there: when it answers again, rerun "
                     f"the same command to resume (FINISHED jobs are skipped)")
    return Abort(f"{name}: {one_line(err, store)}; free some space, then rerun the same command to resume "
                 f"(FINISHED jobs are skipped)")


def warm_up_cuda(argv: list[str]) -> None:
    """Start CUDA's context, cuDNN and cuBLAS in a thread while the jobs' configs are composed and checked (seconds
    on a GPU machine, most of it in the driver), unless the command asks for the CPU or there is no GPU."""
    if any(arg.startswith("device=") and arg != "device=auto" and "cuda" not in arg for arg in argv):
        return
    if not torch.cuda.is_available():
        return

    def warm() -> None:
        x = torch.zeros(8, 1, 32, 32, device="cuda", requires_grad=True)
        weight = torch.zeros(6, 1, 5, 5, device="cuda", requires_grad=True)
        (torch.nn.functional.conv2d(x, weight).sum() + (x.flatten(1) @ x.flatten(1).T).sum()).backward()
        torch.cuda.synchronize()

    threading.Thread(target=warm, name="lenet-cuda-warm-up", daemon=True).start()


def launch(argv: list[str], session: Session) -> int:
    """Every job checked, then Hydra's run or sweep in this process, with its signals taken and its record closed
    however it ends; the exit code (cli's table). BadInput before anything is written; Abort for a sweep that
    could not go on (its one line)."""
    warm_up_cuda(argv)
    prepare_hydra()
    check_command(argv)  # BadInput: one line, exit 2, nothing written
    argv_before = sys.argv[:]
    sys.argv[1:] = argv  # what Hydra's main reads
    previous = cli.handle_signals(session)
    with cli.logging_kept():  # what closing the runs logs goes where the sweep's lines went
        try:
            main()  # Hydra exits by itself (SystemExit 1) when a job fails
        except cli.Interrupted as stop:  # the sweep's parent closes KILLED, with its summary, below
            return stop.exit_code
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else cli.FAILED
        finally:
            try:
                session.background.drain()  # every finished job's files land before its run ends FINISHED
                close_open(session)
            finally:
                sys.argv[:] = argv_before
                cli.restore_signals(previous)
    background = session.background
    if background.fatal is not None:  # the last job's writes found the disk full, or the server gone
        raise stopped(background.fatal, "", getattr(background.fatal, "store", ""))
    return cli.FAILED if background.failures or session.unended else cli.OK
