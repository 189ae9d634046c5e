"""Files written whole or not at all: a reader never sees half a file, and a failed write leaves nothing."""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """write(tmp) to a temporary file beside path, then rename it over path.

    The temporary name holds the process id, so processes writing the same path at once do not
    clash. If write or the rename fails, the temporary file is removed and the error raised: no
    `.tmp` is left behind. A full disk is raised as OSError(ENOSPC) naming path, whatever the
    writer said (torch.save says "[enforce fail at inline_container.cc] ... file write failed").
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, Exception) and out_of_space(err, path.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise
    return path


def out_of_space(err: Exception, folder: Path) -> bool:
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return isinstance(err, (OSError, RuntimeError)) and stat.f_bavail * stat.f_frsize < (1 << 20)
