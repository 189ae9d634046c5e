"""What a job needs to know of the launcher that started it: where the scheduler keeps its side of the record
(how many cores are its own: experiments.cores). The launchers' own behaviour is in the modules here."""
from __future__ import annotations

import os
import signal


class TimeLimit(BaseException):
    """SLURM's warning that this job's time limit is near: raised where the job is, its run ended KILLED (a
    BaseException, as Ctrl-C is, so that no `except Exception` on the way takes it for the job's own error)."""

    outcome = "killed"  # the run's: its recipe may be what was too slow for the limit (not a stop of the sweep)


def scheduler_tags() -> dict[str, str]:
    """Where to look on a cluster for this job (sacct, its log): its SLURM job id, if it is one."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    array = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return {"slurm.job_id": "_".join(array) if all(array) else os.environ["SLURM_JOB_ID"]}


def supersede_earlier_attempts(tracking, tags: dict) -> None:
    """A job its scheduler started again (SLURM requeued it: its node went down, or `scontrol requeue`): its
    earlier attempts' runs are marked superseded, and closed KILLED if still RUNNING, so that the sweep
    counts one run per config (this one) and no attempt stays RUNNING."""
    from ..record.liveness import close_killed
    from ..record.schema import JOB_NUM, SUPERSEDED, SWEEP_ID, jobs_of

    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    if not restarts.isdigit() or int(restarts) == 0 or SWEEP_ID not in tags:
        return
    job = scheduler_tags().get("slurm.job_id", "?")
    for run in jobs_of(tracking.client, tracking.experiment_id, tags[SWEEP_ID], tags[JOB_NUM], running=False):
        if SUPERSEDED in run.data.tags:
            continue
        tracking.client.set_tag(run.info.run_id, SUPERSEDED, f"SLURM started job {job} again (restart {restarts}): "
                                                             f"the next attempt's run is its result")
        if run.info.status == "RUNNING":
            close_killed(tracking.client, run, f"its SLURM job {job} was requeued")


def take_signals() -> None:
    """A submitit job's first step in its process, before Hydra composes its config and runs its task: SIGTERM
    (scancel, its sweep's stop) stops it from here on, as in its task. submitit's own handler, set just before,
    logs and ignores SIGTERM: a job that its sweep's stop reached while it was starting up trained to its end, and
    the stop waited for it."""
    from .. import cli

    cli.handle_signals()


def take_time_limit(launcher) -> None:
    """In a SLURM job submitit started: SLURM's warning before the job's time limit (USR2, signal_delay_s ahead)
    raises TimeLimit, saying which limit it was, where submitit would end the job with 'timed-out too many times'
    in the middle of an epoch. A job submitit requeues instead (hydra.launcher.max_num_timeout left) is requeued."""
    if "SLURM_JOB_ID" not in os.environ:
        return
    submitits = signal.getsignal(signal.SIGUSR2)
    if getattr(submitits, "__name__", "") != "checkpoint_and_try_requeue":  # not submitit's job (sbatch by hand)
        return
    minutes = launcher.get("timeout_min")

    def on_time_limit(signum, frame):
        try:
            submitits(signum, frame)  # requeues and exits, if submitit may
        except Exception:  # submitit's UncompletedJobError: not requeued, the job ends here
            raise TimeLimit(f"stopped by SLURM at its time limit (hydra.launcher.timeout_min={minutes}); "
                            f"raise hydra.launcher.timeout_min") from None

    signal.signal(signal.SIGUSR2, on_time_limit)


def close_job_runs(config, job_nums: list[int], reason: str) -> dict[int, str]:
    """Close KILLED the RUNNING runs of these jobs of the sweep (their processes are gone); job number -> run name."""
    from ..record.liveness import close_sweep_runs
    from ..record.schema import read_sweep
    from ..record.store import connect

    sweep = read_sweep(config.hydra.sweep.dir)
    if sweep is None:
        return {}
    client, experiment_id = connect(config.mlflow.tracking_uri, config.mlflow.experiment,
                                    config.mlflow.server_patience_s)
    closed = {}
    for num in job_nums:
        for run in close_sweep_runs(client, experiment_id, sweep["sweep_id"], reason, job_num=num):
            closed[num] = run.info.run_name
    return closed
