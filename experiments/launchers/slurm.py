"""hydra/launcher=slurm: submitit's SLURM launcher, made to fail loudly instead of waiting silently.

The launcher class itself is hydra_plugins.lenet_sweeps.SlurmLauncher (Hydra takes launchers only
from the hydra_plugins package); what it does is here.

Three things the plain launcher leaves to chance, each of which hangs a sweep or leaves its record
wrong:

- A request the cluster cannot satisfy (a GPU on a CPU-only partition, more CPUs or memory than a
  node has, more time than the partition allows). Under SLURM's default EnforcePartLimits=NO such
  a job stays PENDING for ever. `preflight` compares the request with the partition's limits, read
  from `scontrol`, before anything is submitted, and names the resource in one line; a refusal by
  sbatch itself is one line too.
- A sweep stopped by Ctrl-C or SIGTERM: its jobs are cancelled (scancel), and their runs end
  KILLED (the jobs' own signal handling, then `close_runs` for any a hard kill left RUNNING).
- A job that dies without a result (killed hard, node lost). submitit learns a job's end from
  `sacct`, which a cluster without an accounting daemon does not have, and waits for ever. Here a
  job that has left `squeue` for `dead_job_grace_s` without writing its result has died: its run is
  closed KILLED and the job counts as failed, so the wait is bounded by the job's time limit + the grace.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from ..errors import Abort, JobError
from ..record.liveness import close_killed

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 60  # after scancel: SLURM's KillWait (30 s by default) then SIGKILL
WATCH = ("poll_s", "dead_job_grace_s", "pending_report_s", "pending_timeout_min")  # ours, not sbatch's


class SlurmUnavailable(RuntimeError):
    """SLURM's commands are missing or its controller does not answer."""


def scontrol(*args: str) -> str:
    if shutil.which("scontrol") is None:
        raise SlurmUnavailable("hydra/launcher=slurm needs SLURM's commands (sbatch, scontrol) on this machine: "
                               "none on PATH; run the sweep on the cluster's login node")
    proc = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no answer"])[0]
        raise SlurmUnavailable(f"SLURM's controller did not answer `scontrol {' '.join(args)}`: {first}")
    return proc.stdout


def records(text: str) -> list[dict[str, str]]:
    """scontrol's one-line records (`-o`) as dicts; a value may hold spaces (OS=Linux 6.1 #1 SMP)."""
    return [dict(re.findall(r"(\S+?)=(.*?)(?=\s+[^\s=]+=|$)", line)) for line in text.splitlines() if line.strip()]


@dataclass
class Partition:
    name: str
    up: bool
    nodes: int
    max_time_min: float  # inf: UNLIMITED
    cpus: int  # the most any of its nodes has (or the partition's MaxCPUsPerNode, if lower)
    mem_mb: float
    gpus: int


def minutes(value: str) -> float:
    """SLURM's time format ([days-]hours:minutes:seconds, minutes, UNLIMITED) in minutes."""
    if value in ("UNLIMITED", "INFINITE", "NONE", ""):
        return float("inf")
    days, _, clock = value.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + s / 60


def gpu_count(gres: str) -> int:
    """GPUs in a node's Gres (gpu:4, gpu:a100:2(S:0-1),shard:8, (null))."""
    return sum(int(n) for n in re.findall(r"\bgpu(?::[^:,(]+)?:(\d+)", gres))


def limit(value: str | None) -> float:
    return float("inf") if value in (None, "UNLIMITED") else float(value)


def partitions() -> dict[str, tuple[Partition, bool]]:
    """Every partition of the cluster, and whether it is the default."""
    nodes = {n["NodeName"]: n for n in records(scontrol("show", "node", "-o"))}
    found = {}
    for p in records(scontrol("show", "partition", "-o")):
        members = [nodes[n] for n in expand_hostlist(p.get("Nodes", "")) if n in nodes]
        found[p["PartitionName"]] = (Partition(
            name=p["PartitionName"], up=p.get("State") == "UP", nodes=len(members),
            max_time_min=minutes(p.get("MaxTime", "UNLIMITED")),
            cpus=int(min(max((int(n.get("CPUTot", 0)) for n in members), default=0),
                         limit(p.get("MaxCPUsPerNode")))),
            mem_mb=min(max((float(n.get("RealMemory", 0)) for n in members), default=0),
                       limit(p.get("MaxMemPerNode"))),
            gpus=max((gpu_count(n.get("Gres", "")) for n in members), default=0)), p.get("Default") == "YES")
    return found


def expand_hostlist(hostlist: str) -> list[str]:
    """SLURM's compact host list (node[01-03,07],gpu1) as names, as `scontrol show hostnames` does."""
    if not hostlist or hostlist == "(null)":
        return []
    return scontrol("show", "hostnames", hostlist).split()


def preflight(request: dict[str, Any]) -> None:
    """Raise ValueError, in one line naming the resource, for a request the partition cannot satisfy."""
    known = partitions()
    wanted = request.get("partition")
    if wanted is None:
        defaults = [p for p, is_default in known.values() if is_default]
        if not defaults:
            raise ValueError(f"the cluster has no default partition; choose one with hydra.launcher.partition=NAME "
                             f"({', '.join(known)})")
        part = defaults[0]
    elif wanted not in known:
        raise ValueError(f"hydra.launcher.partition {wanted!r} is not a partition of this cluster; "
                         f"choose one of: {', '.join(known)}")
    else:
        part = known[wanted][0]
    for problem in shortfalls(request, part):
        raise ValueError(f"hydra/launcher=slurm asks for {problem}")
    if not part.up:
        raise ValueError(f"partition {part.name!r} is not UP: its jobs would wait PENDING until it is")


def shortfalls(request: dict[str, Any], part: Partition) -> list[str]:
    """What the request asks for beyond the partition, each as 'what, but what there is; how to fix'."""
    tasks = request.get("tasks_per_node") or 1
    gpus = request.get("gpus_per_node") or (request.get("gpus_per_task") or 0) * tasks
    cpus = (request.get("cpus_per_task") or 1) * tasks
    mem_mb = (request.get("mem_gb") or 0) * 1024
    nodes = request.get("nodes") or 1
    timeout = request.get("timeout_min") or 0
    where = f"partition {part.name!r}"
    found = []
    if gpus > part.gpus:
        fix = "hydra.launcher.gpus_per_node=0" if part.gpus == 0 else f"hydra.launcher.gpus_per_node={part.gpus}"
        found.append(f"{gpus} GPU(s) per node (hydra.launcher.gpus_per_node), but {where} has "
                     f"{'no GPUs' if part.gpus == 0 else f'at most {part.gpus} per node'}; for it: {fix}")
    if cpus > part.cpus:
        found.append(f"{cpus} CPUs per node (hydra.launcher.cpus_per_task x tasks_per_node), but the nodes of {where} "
                     f"have at most {part.cpus}; for it: hydra.launcher.cpus_per_task={max(1, part.cpus // tasks)}")
    if mem_mb > part.mem_mb:
        found.append(f"{request['mem_gb']} GB per node (hydra.launcher.mem_gb), but the nodes of {where} have at most "
                     f"{part.mem_mb / 1024:.1f} GB; for it: hydra.launcher.mem_gb={max(1, int(part.mem_mb // 1024))}")
    if nodes > part.nodes:
        found.append(f"{nodes} nodes per job (hydra.launcher.nodes), but {where} has {part.nodes}")
    if timeout > part.max_time_min:
        found.append(f"{timeout} minutes per job (hydra.launcher.timeout_min), but {where} allows at most "
                     f"{part.max_time_min:g}; for it: hydra.launcher.timeout_min={int(part.max_time_min)}")
    return found


def queued(job_ids: Sequence[str]) -> set[str] | None:
    """Which of these jobs (array tasks as 123_4) SLURM still holds; None when squeue cannot say now."""
    mains = sorted({j.split("_")[0] for j in job_ids})
    proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(mains)], capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0:  # squeue answers an error for ids it no longer knows at all
        if "Invalid job id" in proc.stderr:
            return set()
        return None
    return set(proc.stdout.split())


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """SlurmLauncher.launch: submit the jobs, wait for each to return or die; cancel them on Ctrl-C/SIGTERM."""
    jobs = submit(launcher, job_overrides, initial_job_idx)
    try:
        dead = wait(jobs, launcher.params["poll_s"], launcher.params["dead_job_grace_s"])
    except KeyboardInterrupt:  # process.Interrupted: Ctrl-C or SIGTERM of the sweep
        log.warning("cancelling the sweep's %d SLURM job(s)", len(jobs))
        cancel(launcher.config, jobs)
        raise
    return [dead_return(launcher.config, job, dead[job]) if job in dead else job_return(job) for job in jobs]


def submit(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit one array job, configured as submitit's launcher does (its queue config, prefixed keys)."""
    import submitit

    params = launcher.params
    specific = {"submitit_folder", "max_num_timeout", *WATCH}
    executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                     slurm_max_num_timeout=params.get("max_num_timeout", 0))
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()
                                  if k not in specific})
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    calls = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        calls.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state()))
    try:
        jobs = executor.map_array(launcher, *zip(*calls))
    except Exception as err:  # sbatch's refusal, e.g. under EnforcePartLimits=ALL
        lines = [ln.strip() for ln in str(err).splitlines() if "error" in ln.lower()] or [str(err).strip()]
        raise Abort(f"SLURM refused the sweep's jobs: {lines[-1]}") from None
    log.info("submitted SLURM job(s) %s; their logs: %s", ", ".join(j.job_id for j in jobs),
             str(params["submitit_folder"]).replace("%j", "<job id>"))
    return jobs


def cancel(config, jobs: list) -> None:
    """scancel the jobs (SIGTERM: each job ends its run KILLED), wait for them, close what a hard kill left."""
    subprocess.run(["scancel", *sorted({j.job_id.split("_")[0] for j in jobs})], capture_output=True, timeout=30)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline and queued([j.job_id for j in jobs]) != set():
        time.sleep(0.5)
    close_runs(config, jobs, "its SLURM job was cancelled with the sweep")


def dead_return(config, job, why: str) -> JobReturn:
    close_runs(config, [job], why)
    message = f"SLURM job {job.job_id} {why}; its log: {job.paths.stdout}"
    return JobReturn(overrides=list(job.submission().args[0]), status=JobStatus.FAILED,
                     _return_value=JobError(message))  # Hydra raises it when the sweeper reads the result


def close_runs(config, jobs: list, reason: str) -> None:
    """End KILLED the runs these jobs left RUNNING (found by sweep id and Hydra job number)."""
    from ..record.schema import jobs_of, read_sweep
    from ..record.store import connect

    sweep = read_sweep(config.hydra.sweep.dir)
    if sweep is None:
        return
    client, experiment_id = connect(config.mlflow.tracking_uri, config.mlflow.experiment,
                                    config.mlflow.server_patience_s)
    for job in jobs:
        for run in jobs_of(client, experiment_id, sweep["sweep_id"], job.submission().args[2]):
            close_killed(client, run, f"{reason} (SLURM job {job.job_id})")


def wait(jobs: list, poll_s: float, grace_s: float) -> dict:
    """Wait until every job has a result or has died; return {dead job: why}."""
    missing_since: dict = {}
    dead: dict = {}
    while True:
        waiting = [j for j in jobs if j not in dead and not j.paths.result_pickle.exists()]
        if not waiting:
            return dead
        held = queued([j.job_id for j in waiting])
        now = time.monotonic()
        for job in waiting:
            if held is None or job.job_id in held:
                missing_since.pop(job, None)
            elif now - missing_since.setdefault(job, now) > grace_s:
                dead[job] = f"left the queue without a result (killed, timed out or its node lost; " \
                            f"no result {grace_s:g} s later)"
        time.sleep(poll_s)


def job_return(job) -> JobReturn:
    """The job's own JobReturn, or a FAILED one saying in a line why it has none (an error in the job)."""
    try:
        return job.results()[0]
    except Exception as err:
        last = [ln for ln in str(err).strip().splitlines() if ln.strip()][-1:] or [type(err).__name__]
        message = f"SLURM job {job.job_id} failed: {last[0].strip()}; its log: {job.paths.stdout}"
        return JobReturn(overrides=list(job.submission().args[0]), status=JobStatus.FAILED,
                         _return_value=JobError(message))
