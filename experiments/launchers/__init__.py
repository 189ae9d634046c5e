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


def under_slurm() -> bool:
    """Whether this process is a SLURM job started by submitit (whose SIGTERM handling only logs)."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm"
