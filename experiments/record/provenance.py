"""Where a run's code came from and who ran it: the commit, a hash of any uncommitted changes, a fingerprint
of the library code that computed the results (what resume compares), the user and the command."""
from __future__ import annotations

import functools
import getpass
import hashlib
import os
import subprocess
from pathlib import Path

from ..config import PROJECT_ROOT
from .schema import CODE, GIT_DIFF, GIT_DIRTY

SOURCE_TAGS = {"mlflow.source.name": "python -m experiments.run", "mlflow.source.type": "LOCAL"}
LIBRARY = Path(__file__).resolve().parents[2] / "lenet"  # the code that computes a run's numbers


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return str(os.getuid())


@functools.cache  # one reading per process, not one per run
def code_version() -> str:
    """A fingerprint of the library's sources (lenet/*.py): runs made by other code get another one, whether
    the change was committed or not; a change to the harness around it (logging, the summary) does not."""
    sha = hashlib.sha1()
    for path in sorted(LIBRARY.rglob("*.py")):
        sha.update(str(path.relative_to(LIBRARY)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:12]


@functools.cache
def git_state() -> dict[str, str]:
    """The commit the code came from, whether the checkout has uncommitted changes to tracked files, and a
    hash of those changes (two different edits of one commit differ there), as run tags."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip()
    if not commit:  # not a git checkout (an sdist, a copied tree): nothing to record
        return {}
    diff = git("diff", "HEAD")  # edits to tracked files only
    if diff is None:
        return {"mlflow.source.git.commit": commit, GIT_DIRTY: "unknown"}
    state = {"mlflow.source.git.commit": commit, GIT_DIRTY: str(bool(diff)).lower()}
    return state | ({GIT_DIFF: hashlib.sha1(diff.encode()).hexdigest()[:12]} if diff else {})


def provenance() -> dict[str, str]:
    """The tags every run carries about where it came from."""
    return {**git_state(), CODE: code_version(), **SOURCE_TAGS, "mlflow.user": user()}
