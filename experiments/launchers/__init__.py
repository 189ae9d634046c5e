"""What a job needs to know of the launcher that started it: how many cores are its own, and where the
scheduler keeps its side of the record. The launchers' own behaviour is in the modules here."""
from __future__ import annotations

import os

import torch


def share_cores(jobs_at_once: int | None) -> None:
    """Jobs running side by side (hydra/launcher=joblib, or SLURM jobs sharing a node) split the cores
    instead of oversubscribing them: SLURM's grant, else the cores over the jobs running at once."""
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():  # what SLURM gave this job
        torch.set_num_threads(int(os.environ["SLURM_CPUS_PER_TASK"]))
    elif jobs_at_once:
        cores = os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // (cores if jobs_at_once < 0 else jobs_at_once)))


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
