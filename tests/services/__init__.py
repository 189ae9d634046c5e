"""Real services the tests start for themselves: a SLURM cluster and a PostgreSQL server on this machine.

Each has a shell script here (install, start, stop) that the tests and `.ci/run` call. Where a
service cannot run (no root, packages missing), its tests skip with the reason; with
LENET_REQUIRE_SERVICES=1 (as `.ci/run` sets) they fail instead, so CI never passes by skipping them.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def unavailable(reason: str):
    if os.environ.get("LENET_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (LENET_REQUIRE_SERVICES=1: these tests must run here)")
    pytest.skip(reason)


def script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(HERE / name), *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(f"tests/services/{name} {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc
