"""How the harness names what went wrong: one line a user can act on, and the kind of failure it is."""
from __future__ import annotations

import errno

from hydra.errors import CompactHydraException

DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system"}


class BadInput(ValueError):
    """A value in the command that cannot run, as one line naming it (and the choices); nothing was run or written."""


class Abort(BaseException):
    """Stop the whole command now with this one line (and exit code), past Hydra's per-job handling.

    A BaseException, as KeyboardInterrupt is: Hydra records a job's Exception and goes on to the
    next job, which is right for a bug in one config and wrong when nothing can work (the tracking
    server is gone, the disk is full).
    """

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class JobError(CompactHydraException):
    """A job's failure, which Hydra prints as this one line (no traceback); the sweep goes on."""


def disk_full(err: BaseException) -> bool:
    """Whether err says a disk (or quota) is full: an OSError's errno, or a database's own words."""
    return getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in str(err)


def message(err: BaseException, limit: int | None = None) -> str:
    """What err says, on one line (its whitespace collapsed), cut to limit characters: for a log line or a
    message that names its own kind of failure. one_line is what a user reads when the command stops."""
    text = " ".join(str(err).split())
    return text[:limit] if limit else text


def one_line(err: BaseException, store: str = "") -> str:
    """err in one line; store names the tracking store, for a database that found its disk full."""
    if isinstance(err, OSError) and err.errno in DISK_ERRORS and err.filename:
        return f"{DISK_ERRORS[err.errno]} writing {err.filename}"
    text = message(err)
    if "database or disk is full" in text:
        return f"no space left on device for the MLflow store {store}".rstrip()
    return text if isinstance(err, (ValueError, RuntimeError)) and text else f"{type(err).__name__}: {text}"
