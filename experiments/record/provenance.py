"""Where a run's code came from and who ran it: the commit, a hash of any uncommitted changes, a fingerprint
of the library code that computed the results (what resume compares), the user and the command."""
from __future__ import annotations

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


def code_version() -> str:
    """A fingerprint of the library's sources (lenet/*.py): runs made by other code get another one, whether
    the change was committed or not; a change to the harness around it (logging, the summary) does not. Read
    each time (a few files of source, microseconds): a notebook's kernel lives across edits."""
    sha = hashlib.sha1()
    for path in sorted(LIBRARY.rglob("*.py")):
        sha.update(str(path.relative_to(LIBRARY)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:12]


LOADED: dict[str, tuple] = {}  # lenet module -> (its file's signature, ids of what it defines) when last seen


def edited_since_import() -> list[str]:
    """The lenet/ files edited after this process imported them and not reloaded since (importlib.reload): a
    sweep would train the code in memory while its runs were fingerprinted by the files. Seen first now, a
    module's state becomes the baseline."""
    import sys

    stale = []
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not (name == "lenet" or name.startswith("lenet.")) or not path or not Path(path).exists():
            continue
        signature = (Path(path).stat().st_mtime_ns, Path(path).stat().st_size)
        defined = frozenset(id(v) for v in vars(module).values() if getattr(v, "__module__", None) == name)
        seen = LOADED.get(name)
        if seen is not None and seen[0] != signature and seen[1] == defined:  # edited, not reloaded
            stale.append(str(Path(path).relative_to(LIBRARY.parent)))
            continue
        LOADED[name] = (signature, defined)
    return stale


def git_state() -> dict[str, str]:
    """git_state_of, read once per sweep (a notebook commits between sweeps)."""
    from .session import current

    cache = current().cache
    if "git" not in cache:
        cache["git"] = git_state_of(PROJECT_ROOT)
    return cache["git"]


def git_state_of(root: Path) -> dict[str, str]:
    """The commit the code came from, whether the checkout has uncommitted changes to tracked files, and a
    hash of those changes (two different edits of one commit differ there), as run tags."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5)
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
