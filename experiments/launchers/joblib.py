"""hydra/launcher=joblib: jobs side by side in worker processes, made to end well when a worker does not.

The launcher class is hydra_plugins.lenet_sweeps.JoblibLauncher; what it does is here. Hydra's own
joblib launcher waits for every job's result at once: a worker that dies (kill -9, the out-of-memory
killer) breaks the whole pool, and the sweep ends in joblib's 30-line TerminatedWorkerError with the
dead worker's run left RUNNING and the jobs not yet started never run. Here the results are taken as
they come; when the pool breaks, the runs its workers left RUNNING are closed KILLED (one line per job,
naming it), and the jobs without a result are launched again in a fresh pool (`retries` times), then
listed as not run. A rerun of the same command resumes whatever is left.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import open_dict

from ..errors import JobError
from . import close_job_runs, oom

log = logging.getLogger(__name__)


def execute_job(idx: int, overrides: Sequence[str], hydra_context, config, task_function,
                singleton_state: dict[Any, Any]) -> tuple[int, JobReturn]:
    """One job in a worker process, as Hydra's joblib launcher runs it; returned with its index."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return idx, run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                        job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """JoblibLauncher.launch: every job's JobReturn, in order; those whose worker died, or that never ran, FAILED."""
    from joblib import Parallel, delayed
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    options = {k: v for k, v in launcher.joblib.items() if k != "retries"} | {"backend": "loky"}
    for key in ("pre_dispatch", "batch_size", "max_nbytes"):  # as Hydra's launcher reads them
        if str(options.get(key) or "").isdigit():
            options[key] = int(options[key])
    log.info("Joblib.Parallel(%s) is launching %d jobs", ",".join(f"{k}={v}" for k, v in options.items()),
             len(job_overrides))
    jobs = {initial_job_idx + i: list(overrides) for i, overrides in enumerate(job_overrides)}
    for idx, overrides in jobs.items():
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
    quiet_resource_tracker(Path(str(launcher.config.hydra.sweep.dir)) / "joblib_resource_tracker.log")
    state, returns = Singleton.get_state(), {}
    for attempt in range(launcher.joblib.get("retries", 1) + 1):
        kills = oom.counted()
        pending = [idx for idx in jobs if idx not in returns]
        calls = (delayed(execute_job)(idx, jobs[idx], launcher.hydra_context, launcher.config,
                                      launcher.task_function, state) for idx in pending)
        try:
            for idx, result in Parallel(**options, return_as="generator_unordered")(calls):
                returns[idx] = result
            break
        except TerminatedWorkerError as err:  # one worker died, and the pool with it: close what it left, go on
            # Which job's worker died, joblib does not say; the pool's other workers went down with it.
            memory = oom.killed_since(kills)
            left = [idx for idx in jobs if idx not in returns]
            closed = close_job_runs(launcher.config, left, f"its joblib worker was {memory}" if memory else
                                     "its joblib worker died")
            again = attempt < launcher.joblib.get("retries", 1)
            names = ", ".join(str(closed.get(idx, f"job #{idx}")) for idx in left)
            runs = "" if not closed else "; its run is closed KILLED" if len(closed) == 1 else \
                "; their runs are closed KILLED"
            how = f"was {memory}" if memory else \
                f"died ({exit_codes(err)}: killed by hand, or by the system for memory)"
            log.error("a worker process %s and took joblib's pool with it: %s left without a result%s%s%s", how,
                      names, runs, "; launched again in a fresh pool" if again else "",
                      "; if it happens again, lower hydra.launcher.n_jobs or trainer.batch_size" if memory else "")
    for idx in jobs:
        if idx not in returns:
            returns[idx] = JobReturn(overrides=jobs[idx], status=JobStatus.FAILED, _return_value=JobError(
                f"{' '.join(filter_overrides(jobs[idx]))}: not run to its end (its worker process died); rerun the "
                f"same command to run it"))
    return [returns[idx] for idx in sorted(jobs)]


def quiet_resource_tracker(log_file: Path) -> None:
    """joblib's resource tracker (a helper process that frees the pool's semaphores and shared memory) started with
    its stderr in log_file, from now on in this process. One that dies (killed with the sweep's other processes, by
    the OOM killer) is started again by loky, and the new one, not knowing what the dead one tracked, printed a
    KeyError traceback for each resource the pool then freed: 9 tracebacks, 45 lines, at the end of a sweep whose
    record was whole. Those go to the file; the terminal gets one line."""
    import warnings

    from joblib.externals.loky.backend import resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "lenet_log", None) is not None:  # done for an earlier sweep of this process
        return
    warnings.filterwarnings("ignore", message="resource_tracker: process died unexpectedly")
    launch, tracker.lenet_log = tracker._launch, log_file

    def launch_into_the_log():
        again = tracker._pid is None and getattr(tracker, "lenet_launched", False)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as sink:
            sys.stderr.flush()
            stderr = os.dup(2)
            os.dup2(sink.fileno(), 2)  # what the helper inherits as its stderr
            try:
                launch()
            finally:
                os.dup2(stderr, 2)
                os.close(stderr)
        tracker.lenet_launched = True
        if again:
            log.warning("joblib's resource tracker process died and was started again; what the new one says of "
                        "the resources it did not know goes to %s (harmless: the sweep's record is not affected)",
                        log_file)

    tracker._launch = launch_into_the_log


def exit_codes(err: Exception) -> str:
    """How the workers ended, as joblib says it ('SIGKILL(-9)'), or 'killed' where it does not."""
    said = re.search(r"exit codes of the workers are \{([^}]*)\}", str(err))
    return said.group(1).strip() if said and said.group(1).strip() else "killed"
