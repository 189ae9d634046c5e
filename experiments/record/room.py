"""Room set aside on a local store's disk for the record's last words: a sweep that fills its disk can still
end its parent run, instead of leaving it RUNNING with no process behind it.

Ending a run is a few pages appended to the store's write-ahead log; on a full disk there is no room for
them. So an open sweep keeps a file of zeros beside the store (`mlflow.db.sweeps/<sweep key>.room`), and
removes it just before it ends its parent run. A process killed hard leaves the file; the next launch of the
same sweep writes it again, and deleting it by hand loses nothing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

ROOM_BYTES = 256 * 1024  # a sweep's end takes under 64 KB of log (the tags and status of the parent run)


def set_aside(store: Path | None, key: str) -> Path | None:
    """The file that holds the room for the sweep `key` beside a local store (None: a server, a database,
    or a disk already too full for it)."""
    if store is None:
        return None
    path = store.with_name(store.name + ".sweeps") / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.room"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(ROOM_BYTES))  # zeros written, not a sparse file: the blocks are really taken
    except OSError:
        path.unlink(missing_ok=True)
        return None
    return path


def give_back(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
