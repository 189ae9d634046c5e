"""What one sweep holds in this process, in one object: its connections to stores, its background writer, its
heartbeat, the servers it gave up on, the sweep it has open, a parent it could not end, the signal that stopped it.

`experiments.run_sweep` makes a Session for each call (`scope`) and closes it at the end (the writer drained,
the heartbeat stopped, the store's pooled connections closed), so a second sweep in the same interpreter (a
notebook, a test) starts from nothing but the caches that stay valid: datasets by what they are made of.
Whatever runs the sweep's jobs in this process reaches it with `current()`: Hydra instantiates the sweep's
callback and calls its task function itself, so they cannot be handed it. A process no run_sweep started (a
launcher's job process, a test calling run_job) has one session for its life, as a command's process does.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from .finishing import Background
from .liveness import Heartbeat

log = logging.getLogger(__name__)


@dataclass
class Session:
    connections: dict = field(default_factory=dict)  # (tracking uri, experiment, patience) -> store.Tracking
    background: Background = field(default_factory=Background)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    given_up: set = field(default_factory=set)  # tracking servers that stayed down past their patience
    opened: object | None = None  # the sweep's SweepCallback while its parent run is open
    unended: str | None = None  # a parent run it could not end: the command fails
    received: list = field(default_factory=list)  # the signal that stopped it, once one has
    result: object | None = None  # what the sweep's end made of it (analysis.tables.analyse), for run_sweep
    summary: str = ""  # the summary it printed (analysis.brief: one screen)
    full_summary: str = ""  # the whole analysis (summary.md, the parent run's description)
    job_runs: list = field(default_factory=list)  # (tracking uri, run id) of each job this process ran or skipped
    sweep_id: str | None = None
    parent_run_id: str | None = None
    cache: dict = field(default_factory=dict)  # what is read once per sweep (record.provenance: the git state)

    def __reduce__(self):
        # A session never crosses processes: pickled with a launcher's job (submitit pickles the sweep's callback
        # and runs along with it), it is that process's own on arrival.
        return current, ()

    def close(self) -> None:
        """Its writes landed, its threads stopped, its stores' pooled connections closed (a store deleted and
        made again at the same path between two sweeps is then opened afresh, not written through a stale
        handle to the deleted file)."""
        self.background.drain()
        self.background.stop()
        self.heartbeat.stop()
        from .store import close_pooled

        for tracking in self.connections.values():
            close_pooled(tracking.client)
        self.connections.clear()


PROCESS = Session()  # the session of a process no run_sweep call scoped
CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("lenet_session", default=None)


def current() -> Session:
    return CURRENT.get() or PROCESS


@contextlib.contextmanager
def scope() -> Iterator[Session]:
    """A new session for the code inside, closed at its end however it ends."""
    session = Session()
    token = CURRENT.set(session)
    try:
        yield session
    finally:
        try:
            session.close()
        finally:
            CURRENT.reset(token)
