"""The project's commands run as a user runs them: in a subprocess, from the project root."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from experiments.config import PROJECT_ROOT

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run(*args: str, check: bool = True, cwd=PROJECT_ROOT, timeout: float = 300,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """python -m ARGS to its end (env: variables set for it); with check, a non-zero exit fails the test with what
    it printed."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def start(*args: str, cwd=PROJECT_ROOT, session: bool = False, cgroup=None) -> subprocess.Popen:
    """python -m ARGS started as from a terminal, its output merged: a shell's background job (CI may be
    one) starts with SIGINT ignored, a terminal's foreground job does not. session: in a process group
    of its own, as a batch system starts a job (a signal to the group reaches it and its workers only).
    cgroup: the cgroup.procs file of a cgroup it joins before it starts (a memory limit of its own)."""
    def as_from_a_terminal():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if session:
            os.setsid()
        if cgroup is not None:
            with open(cgroup, "w") as procs:
                procs.write(str(os.getpid()))

    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV, preexec_fn=as_from_a_terminal)


def printed(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def imported_by(code: str, prefixes: tuple[str, ...], *args: str, setup: str = "") -> list[str]:
    """The modules under prefixes that code imports in a fresh interpreter (sys.argv[1:]: args), beyond what setup
    imported first: what a fresh process pays, which a test in a warm one cannot see."""
    new = f"sorted(m for m in set(sys.modules) - before if m.startswith({prefixes!r}))"
    script = "\n".join([setup, "import sys", "before = set(sys.modules)", code, f"print('imported:', *{new})"])
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300, env=ENV)
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.split("imported:")[1].split()
