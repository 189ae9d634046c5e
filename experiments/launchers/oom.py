"""Whether the kernel's out-of-memory killer ended a job's process: its count of kills, before and after.

A process the OOM killer ends gets SIGKILL, as from `kill -9`, and leaves no word of why. The kernel counts
its kills: per memory cgroup (v2 memory.events, v1 memory.oom_control: `oom_kill N`) and for the machine
(/proc/vmstat). A launcher reads the count when its jobs start and again when a job's process died by SIGKILL:
a kill counted meanwhile in this process's cgroup (the one its job processes share) names the OOM killer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Kills:
    cgroup: int | None  # in this process's memory cgroup (and those under it), where the kernel says
    machine: int | None  # on the whole machine
    where: str = ""  # the cgroup's path, as /proc/self/cgroup names it
    limit: int | None = None  # its memory limit in bytes, if it has one


def counted() -> Kills:
    """The OOM killer's kills so far; None where this system does not say (not Linux, no cgroup files)."""
    cgroup, where, limit = memory_cgroup()
    return Kills(oom_kill(cgroup / "memory.events") if cgroup and (cgroup / "memory.events").exists()
                 else oom_kill(cgroup / "memory.oom_control") if cgroup else None,
                 oom_kill(Path("/proc/vmstat")), where, limit)


def memory_cgroup() -> tuple[Path | None, str, int | None]:
    """This process's memory cgroup folder (v2, else v1's memory controller), its path, and its limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, "", None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1
            folder = CGROUP_ROOT / "memory" / path.lstrip("/")
            return (folder, path, limit_of(folder / "memory.limit_in_bytes")) if folder.exists() else (None, "", None)
    for line in lines:
        if line.startswith("0::"):  # v2
            folder = CGROUP_ROOT / line[3:].lstrip("/")
            if (folder / "memory.events").exists():
                return folder, line[3:], limit_of(folder / "memory.max")
    return None, "", None


def oom_kill(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def limit_of(path: Path) -> int | None:
    try:
        value = path.read_text().strip()
    except OSError:
        return None
    return int(value) if value.isdigit() and int(value) < 1 << 60 else None  # "max", or v1's "no limit"


def killed_since(before: Kills) -> str | None:
    """What the OOM killer did since `before`, as the words for a process that died by SIGKILL; None if nothing."""
    now = counted()
    if None not in (now.cgroup, before.cgroup) and now.cgroup > before.cgroup:
        limit = f", whose limit is {now.limit / 2**30:.1f} GiB" if now.limit else ""
        return f"killed by the kernel's out-of-memory killer (memory cgroup {now.where}{limit})"
    # The cgroup's count takes every kind of OOM kill of its processes (v2; v1 since Linux 4.19): where it says
    # none, the machine's count (another process's kill) says nothing of this one.
    if before.cgroup is None and None not in (now.machine, before.machine) and now.machine > before.machine:
        return "killed by the kernel's out-of-memory killer (the machine ran out of memory)"
    return None
