"""Models that fail on purpose at a known point, reached through Hydra: model._target_=tests.support.faults.NAME.

A test injects a fault where it wants it instead of watching a sweep's output and waiting for the
moment: a bug in the training step, or a signal sent when the first epoch ends.
"""
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import torch
from hydra.experimental.callback import Callback

from lenet.model import lenet_classic


def exploding_lenet(**kw):
    """LeNet-5 whose training step raises, as a bug in user code would."""
    net = lenet_classic(**kw)

    def explode(module, args):
        if torch.is_grad_enabled():
            raise RuntimeError("injected fault in forward")

    net.register_forward_pre_hook(explode)
    return net


def signalling_lenet(signal_name: str = "SIGTERM", to: str = "process", twice: bool = False, tally: str = "",
                     times: int = 1, until_gone: bool = False, **kw):
    """LeNet-5 that sends a signal as its second epoch starts (the first training step after the first
    evaluation: epoch 1 is logged by then).

    to: its own process, its process group ("group", as a batch system's time limit does), the process group
    whose id is in a file ("pidfile:PATH": a server or sweep the test runs), the one process whose id is in a
    file ("pid:PATH": the sweep's command, as `kill PID` does), or joblib's resource tracker ("resource_tracker").
    twice: a second one 50 ms later, as people press Ctrl-C twice. tally: where the signals sent by every job of
    the sweep are counted; at most `times` are sent, so the test can rerun the very same command (the same sweep)
    and have it complete. until_gone: with a pidfile, train on only once that process group has exited (a server's
    next request then finds it down, whatever its shutdown takes).
    """
    net = lenet_classic(**kw)
    sig = signal.Signals[signal_name]
    state = {"evaluated": False, "sent": False}

    def send(module, args):
        if not module.training:
            state["evaluated"] = True
            return
        if not state["evaluated"] or state["sent"] or (tally and not claimed(tally, times)):
            return
        state["sent"] = True
        if to == "resource_tracker":  # joblib's helper process, a child of the sweep's process as this worker is
            os.kill(resource_tracker_of(os.getppid()), sig)
            return
        if to.startswith(("pidfile:", "pid:")):
            kind, path = to.split(":", 1)
            target = int(open(path).read())
            (os.killpg if kind == "pidfile" else os.kill)(target, sig)
            if until_gone:
                gone(target)
            return
        if twice:  # while the first one is being handled
            target = f"-{os.getpgid(0)}" if to == "group" else str(os.getpid())
            subprocess.Popen(["sh", "-c", f"sleep 0.05; kill -{sig.name[3:]} -- {target}"])
        if to == "group":
            os.killpg(0, sig)
        else:
            os.kill(os.getpid(), sig)

    net.register_forward_pre_hook(send)
    return net


def resource_tracker_of(parent: int) -> int:
    """The pid of loky's resource tracker process started by the process parent."""
    for pid, _, ppid, _ in processes():
        try:
            if ppid == parent and b"resource_tracker import main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise LookupError(f"no resource tracker of process {parent}")


def waiting_lenet(marker: str, wait_s: float = 120, release: str = "", **kw):
    """LeNet-5 that, as its second epoch starts (its first time only: marker does not exist yet), creates marker and
    waits there for what the test does to its process (closes its terminal, say), up to wait_s, or until the file
    release exists (the test has done what it does meanwhile: overwritten the store, say)."""
    net = lenet_classic(**kw)
    state = {"evaluated": False}

    def wait(module, args):
        if not module.training:
            state["evaluated"] = True
        elif state["evaluated"] and not os.path.exists(marker):
            open(marker, "w").close()
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and not (release and os.path.exists(release)):
                time.sleep(0.05)

    net.register_forward_pre_hook(wait)
    return net


def gone(group: int, timeout: float = 60) -> None:
    """Wait until process group `group` has no live process left (an exited one its parent has not reaped yet,
    a zombie, serves nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(state != "Z" and pgrp == group for _, state, _, pgrp in processes()):
        time.sleep(0.05)


def processes():
    """(pid, state, parent pid, process group) of each process on this machine, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        yield int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])


def claimed(tally: str, times: int) -> bool:
    """Whether this process may send one of the `times` signals a sweep's jobs may send in all: it creates one of
    the files TALLY.1 .. TALLY.times that none has yet (exclusive creation: two jobs at the same epoch, in two
    workers, never both take the last one)."""
    for n in range(1, times + 1):
        try:
            os.close(os.open(f"{tally}.{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            continue
    return False


def requeueing_lenet(**kw):
    """LeNet-5 whose SLURM job asks SLURM to requeue it as its second epoch starts, on its first attempt only
    (as a node going down does to the jobs on it), then waits to be stopped."""
    net = lenet_classic(**kw)
    state = {"evaluated": False}

    def requeue(module, args):
        if not module.training:
            state["evaluated"] = True
        elif state["evaluated"] and os.environ.get("SLURM_RESTART_COUNT", "0") == "0":
            subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=True)
            time.sleep(120)  # SLURM stops this attempt meanwhile

    net.register_forward_pre_hook(requeue)
    return net


def hungry_lenet(gigabytes: float, tally: str, **kw):
    """LeNet-5 that, as its second epoch starts (in one job of the sweep: tally), asks for more memory than its
    process may have, page by page, as a too-large batch does: first the kernel's out-of-memory killer is told to
    take this process rather than the sweep's (oom_score_adj), so that the kill is the one the test injects."""
    net = lenet_classic(**kw)
    state = {"evaluated": False, "done": False}

    def eat(module, args):
        if not module.training:
            state["evaluated"] = True
        elif state["evaluated"] and not state["done"] and claimed(tally, 1):
            state["done"] = True
            with open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")
            hoard = []
            for _ in range(int(gigabytes * 16)):
                hoard.append(torch.ones(64 << 20, dtype=torch.uint8))  # 64 MB, every page touched
        elif state["evaluated"] and not state["done"]:
            state["done"] = True

    net.register_forward_pre_hook(eat)
    return net


@contextlib.contextmanager
def memory_limit(limit_bytes: int):
    """A memory cgroup of its own with this limit (v1's memory controller, or v2), for a process to join: its
    cgroup.procs file. Skips the test where this process may not make one (not root, no writable cgroups)."""
    import pytest

    v1 = Path("/sys/fs/cgroup/memory")
    name = f"lenet-test-{os.getpid()}-{time.monotonic_ns()}"
    if v1.is_dir():
        folder, files = v1 / name, {"memory.limit_in_bytes": limit_bytes, "memory.memsw.limit_in_bytes": limit_bytes}
    else:
        folder, files = Path("/sys/fs/cgroup") / name, {"memory.max": limit_bytes, "memory.swap.max": 0}
    try:
        folder.mkdir()
        for file, value in files.items():
            if (folder / file).exists():
                (folder / file).write_text(str(value))
    except OSError as err:
        if folder.exists():
            folder.rmdir()
        pytest.skip(f"cannot make a memory cgroup here ({err}): it takes root and writable cgroups")
    try:
        yield folder / "cgroup.procs"
    finally:
        for _ in range(100):  # its processes gone, it can be removed
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)


class SignalledAsItStarts(Callback):
    """A Hydra callback (+hydra.callbacks.NAME._target_=tests.support.faults.SignalledAsItStarts): job job_num sends
    itself SIGTERM as it starts, before its task runs, as `scancel` or its sweep's stop reaches a job that is still
    starting up (imports, its config composed)."""

    def __init__(self, job_num: int = 1):
        self.job_num = job_num

    def on_job_start(self, config, **kwargs) -> None:
        if config.hydra.job.num == self.job_num:
            os.kill(os.getpid(), signal.SIGTERM)
