"""One identical sweep at a time per store, and one process at a time where a store is created.

A sweep is identified by its key (config.sweep_key). On a local store, its lock is a file lock
held for the life of the process: the kernel drops it however the process ends (kill -9
included). Through a tracking server there is no shared file system, so the launches settle it
in the store itself: each claims the parent run with a tag, waits for a rival's claim to land,
and only the winner goes on.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no locks; the claim protocol still keeps server sweeps apart
    fcntl = None

from . import schema
from .liveness import gone, iso, me

CLAIM_SETTLE_S = 2.0  # how long a launch waits for a rival's claim to land before reading who won


class AlreadyRunning(RuntimeError):
    """The same sweep is running against this store now."""

    def __init__(self, tracking_uri: str, holder: str):
        super().__init__(f"this sweep is already running against {tracking_uri} ({holder}); wait for it to end, "
                         f"then rerun the same command to resume whatever it leaves unfinished")


@contextmanager
def exclusive(lock_path: Path):
    """An exclusive lock across processes on this machine, waited for (a no-op where fcntl is missing)."""
    with open(lock_path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


class SweepGuard:
    """This launch's hold on its sweep: `SweepGuard(uri, key)` takes a local store's lock at once (or
    raises AlreadyRunning); `settle` then decides among launches against a server, once the parent exists."""

    def __init__(self, tracking_uri: str, store: Path | None, key: str, settle_s: float = CLAIM_SETTLE_S):
        """store: a local store's file (None for a server or a database)."""
        self.tracking_uri, self.key, self.settle_s = tracking_uri, key, settle_s
        self.lock = None  # the open lock file, held until the process ends
        if store is not None and fcntl is not None:
            self.lock = hold_file_lock(tracking_uri, store, key)

    def settle(self, client, experiment_id: str, parent_id: str, created: bool, timeout_s: float) -> None:
        """With no local lock: claim the parent, wait for rivals' claims, and go on only as the winner (the
        earliest live parent; on one parent, the last claim written). A loser removes a parent it made."""
        if self.lock is not None:
            return
        token = f"{me()}:{uuid.uuid4().hex[:8]}"
        client.set_tag(parent_id, schema.CLAIM, token)
        time.sleep(self.settle_s)
        mine = client.get_run(parent_id)
        rivals = [r for r in schema.sweeps_with_key(client, experiment_id, self.key, running=True)
                  if r.info.run_id != parent_id and gone(r.data.tags, r.info.start_time, timeout_s) is None
                  and (r.info.start_time, r.info.run_id) < (mine.info.start_time, parent_id)]
        if mine.data.tags.get(schema.CLAIM) == token and not rivals:
            return
        if created:
            client.delete_run(parent_id)
        holder = (rivals[0].data.tags if rivals else mine.data.tags).get(schema.OWNER, "another process")
        raise AlreadyRunning(self.tracking_uri, holder)


def hold_file_lock(tracking_uri: str, store: Path, key: str):
    """The open, locked file of this sweep beside the store, or AlreadyRunning naming who holds it."""
    path = store.with_name(store.name + ".sweeps") / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyRunning(tracking_uri, holder) from None
    handle.truncate(0)
    handle.write(f"{me()}, since {iso(time.time())}\n")
    handle.flush()
    return handle
