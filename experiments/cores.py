"""A job's threads fit the cores it gets: torch's intra-op threads are the cores this process may use (its CPU
affinity and its cgroup's CPU quota, not the machine's count), split among the jobs running at once, and idle
OpenMP threads sleep instead of spinning.

Why the second: torch's OpenMP threads spin at each barrier waiting for their partners (GNU OpenMP's default). On
a machine whose cores are shared, a partner may have no core, and the spinning takes the core it needs: measured on
2 cores beside three CPU-bound processes, a 12-epoch classic run used 4.1x the CPU seconds it uses alone, and 1.4x
with OMP_WAIT_POLICY=PASSIVE (BENCHMARKS.md). On a quiet machine sleeping costs wall time instead (each barrier
wakes its threads: 10-28% slower in three alternating pairs), so LENET_IDLE_THREADS=auto, the default, makes them
sleep only where the machine is busy when the process starts (its 1-minute load average at or above the cores this
process may use); sleep and spin force either. OpenMP reads its policy once, when torch loads it, so it is set as
`experiments` is imported (experiments/__init__.py), before anything imports torch; a load that starts later is
not seen. A user's own OMP_WAIT_POLICY, or LENET_PROCESS_TUNING=0, leaves OpenMP's default alone.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


IDLE_THREADS = ("auto", "sleep", "spin")


def idle_threads_sleep() -> bool:
    """OMP_WAIT_POLICY=PASSIVE for this process and the jobs it starts where LENET_IDLE_THREADS says so (auto: the
    machine is busy), unless the user set a policy, turned tuning off, or torch is loaded already; True if set."""
    if os.environ.get("LENET_PROCESS_TUNING", "1") == "0" or "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0  # Windows has none: a quiet machine
    if not should_sleep(os.environ.get("LENET_IDLE_THREADS", "auto"), load, usable_cores()):
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def should_sleep(setting: str, load: float, cores: int) -> bool:
    """Whether idle threads should sleep: sleep, spin, or auto (the machine's load already fills this process's
    cores: another thread of ours would wait for a core). An unknown setting counts as auto here (this runs at
    import); the commands refuse it in one line (check_setting, from experiments.validate)."""
    return setting == "sleep" or (setting not in ("sleep", "spin") and load >= cores)


def check_setting() -> None:
    setting = os.environ.get("LENET_IDLE_THREADS", "auto")
    if setting not in IDLE_THREADS:
        raise ValueError(f"LENET_IDLE_THREADS={setting!r} is not one of {', '.join(IDLE_THREADS)}")


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on: its affinity mask, capped by its cgroup's CPU quota (a container given
    --cpus=2 on a 64-core host sees 64 CPUs and may use 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cgroup)
    return max(1, min(cores, quota) if quota else cores)


def cpu_quota(cgroup: Path = CGROUP) -> int | None:
    """Whole cores of this process's cgroup CPU quota (rounded down, at least 1), or None if it has none. cgroup v2's
    cpu.max ("max 100000" or "<quota> <period>"), else v1's cpu.cfs_quota_us over cpu.cfs_period_us."""
    for folder in own_cgroups(cgroup):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            try:
                quota = (folder / "cpu.cfs_quota_us").read_text().strip()
                period = (folder / "cpu.cfs_period_us").read_text().strip()
            except OSError:
                continue
        if quota in ("max", "-1"):
            continue
        try:
            return max(1, math.floor(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            continue
    return None


def own_cgroups(cgroup: Path) -> list[Path]:
    """This process's cgroup folders (v2's single hierarchy, v1's cpu controller), innermost first, then the root."""
    folders = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers in ("", "cpu,cpuacct", "cpu", "cpuacct,cpu"):
                base = cgroup if controllers == "" else cgroup / controllers
                parts = Path(path.lstrip("/")).parts
                folders += [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    except (OSError, ValueError):
        pass
    return folders or [cgroup]


def share_cores(jobs_at_once: int | None) -> int:
    """Set torch's intra-op threads for a CPU job: SLURM's grant, else the usable cores over the jobs running at
    once (hydra/launcher=joblib's n_jobs; -1: one per core). Returns the threads set."""
    import torch

    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():  # what SLURM gave this job
        threads = int(os.environ["SLURM_CPUS_PER_TASK"])
    else:
        cores = usable_cores()
        threads = max(1, cores // (cores if jobs_at_once is not None and jobs_at_once < 0 else jobs_at_once or 1))
    torch.set_num_threads(threads)
    return threads
