"""What a SLURM cluster is, as its controller says: its partitions and their limits (scontrol), and its
queue (squeue). `preflight` refuses, in one line, a request no partition can satisfy."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Sequence


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


SIGNAL_EARLY_S = 60  # SLURM sends a job's --signal up to 60 s before the time asked (its event resolution)
START_S = 30  # a job's start before it trains: Python, torch and the store, its data (about 10-20 s here)


def too_short(timeout_min: float | None, signal_delay_s: float | None) -> str | None:
    """Why a time limit cannot fit a job, if it cannot: submitit has SLURM warn the job signal_delay_s before its
    limit (then the job ends), and SLURM may warn it a minute earlier still; what is left must hold its start."""
    if not timeout_min:
        return None
    delay = signal_delay_s or 0
    left = timeout_min * 60 - delay - SIGNAL_EARLY_S
    if left >= START_S:
        return None
    enough = math.ceil((delay + SIGNAL_EARLY_S + START_S) / 60)
    return (f"hydra.launcher.timeout_min={timeout_min:g} cannot fit a job: SLURM warns it "
            f"hydra.launcher.signal_delay_s={delay:g} s before its limit (and up to {SIGNAL_EARLY_S} s earlier), "
            f"which leaves {max(left, 0):.0f} s, and a job takes about {START_S} s to start; set "
            f"hydra.launcher.timeout_min={enough} or more")


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


def queue_states(job_ids: Sequence[str]) -> dict[str, tuple[str, str]] | None:
    """These jobs (array tasks as 123_4) that SLURM still holds: id -> (state, reason), e.g. ("PENDING",
    "ReqNodeNotAvail, UnavailableNodes:node1"); None when squeue cannot say now."""
    mains = sorted({j.split("_")[0] for j in job_ids})
    proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(mains)], capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0:  # squeue answers an error for ids it no longer knows at all
        if "Invalid job id" in proc.stderr:
            return {}
        return None
    return {job: (state, reason) for job, state, reason in
            (line.split("|", 2) for line in proc.stdout.splitlines() if line.count("|") == 2)}


def queued(job_ids: Sequence[str]) -> set[str] | None:
    """Which of these jobs SLURM still holds; None when squeue cannot say now."""
    states = queue_states(job_ids)
    return None if states is None else set(states)


def final_state(job_id: str) -> str | None:
    """The state SLURM ended a job in (OUT_OF_MEMORY, TIMEOUT, FAILED, ...), while its controller still keeps the
    job (MinJobAge, 300 s by default); None where it cannot say. Read from scontrol: squeue no longer lists it,
    and a cluster without accounting has no sacct."""
    try:
        found = records(scontrol("-o", "show", "job", job_id))
    except (SlurmUnavailable, subprocess.SubprocessError):
        return None
    states = {r.get("JobState") for r in found} - {None}
    return states.pop() if len(states) == 1 else None
