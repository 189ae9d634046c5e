"""What the submitit launchers (hydra/launcher=slurm and submitit_local) share: the jobs submitted as Hydra's
submitit launcher submits them, and each job's result as a JobReturn, FAILED in one line when it has none."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from ..errors import JobError

log = logging.getLogger(__name__)


def submit(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, executor,
           own_keys: set[str]) -> list:
    """Submit the sweep's jobs as one array with `executor`, configured as submitit's launcher does (its queue
    config, the cluster's keys prefixed); own_keys are the launcher's, kept from the executor."""
    params = launcher.params
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in shared else f"{executor.cluster}_{k}": v for k, v in params.items()
                                  if k not in own_keys | {"submitit_folder", "max_num_timeout"}})
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    calls = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        calls.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state()))
    return executor.map_array(launcher, *zip(*calls))


def job_name(job) -> str:
    return " ".join(filter_overrides(job.submission().args[0]))


def job_num(job) -> int:
    return job.submission().args[2]


def job_return(job, kind: str) -> JobReturn:
    """The job's own JobReturn, or a FAILED one saying in a line why it has none (an error in the job)."""
    try:
        return job.results()[0]
    except Exception as err:
        last = [ln for ln in str(err).strip().splitlines() if ln.strip()][-1:] or [type(err).__name__]
        return failed(job, f"{kind} job {job.job_id} failed: {last[0].strip()}; its log: {job.paths.stdout}")


def failed(job, message: str) -> JobReturn:
    return JobReturn(overrides=list(job.submission().args[0]), status=JobStatus.FAILED,
                     _return_value=JobError(message))  # Hydra raises it when the sweeper reads the result
