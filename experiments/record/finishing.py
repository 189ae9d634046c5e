"""A job's writes that decide nothing for the next job (its per-epoch metrics, files, plots, MLflow model and
dataset input) done by one background thread while the next job trains, in the order they were asked for.

A run is ended FINISHED only after every write for it has landed; a write that fails ends it FAILED with the
error, as a failure in the job would. Before a run is ended by anything else (Ctrl-C, an error), before the
sweep reads its runs for the summary, and before the command exits, every queued write is done (`drain`).
A process killed hard (kill -9) leaves its runs RUNNING for the next sweep to close KILLED: a run is never
FINISHED without its files.

Writes go to the background only where another job follows in this process (the basic launcher's sweep) and
the jobs train on a GPU, which leaves the CPU free meanwhile (`enabled`, set by the run command); on a CPU the
writer would slow the next job's training by as much as it saves, so each write is done at once. Each sweep has
its own writer (record.session).
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ..errors import disk_full, message
from .client import TrackingUnavailable

log = logging.getLogger(__name__)


STOP = object()  # what ends the writer thread, queued after every write


class Background:
    """One writer thread for a sweep and its queue of (what, write) pairs."""

    def __init__(self) -> None:
        self.enabled = False
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.failures: list[str] = []  # one line each, for the command's exit code
        self.fatal: BaseException | None = None  # a full disk or a gone server: every later job would fail too

    def submit(self, write: Callable[[], None], on_error: Callable[[BaseException], None], job: str = "") -> None:
        """write() in the background, for the job so named; on_error(err) there if it raises."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.work, name="lenet-record-writer", daemon=True)
            self.thread.start()
        self.queue.put((write, on_error, job))

    def work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is STOP:
                    return
                run_write(*item, self)
            finally:
                self.queue.task_done()

    def stop(self) -> None:
        """End the thread once what is queued is written (a later submit starts another)."""
        if self.thread is not None and self.thread.is_alive():
            self.queue.put(STOP)
            self.thread.join()
        self.thread = None

    def drain(self) -> None:
        """Return once every queued write is done (a second Ctrl-C meanwhile is ignored by cli.handle_signals)."""
        if self.thread is not None:
            self.queue.join()

    def raise_fatal(self) -> None:
        """In the jobs' thread: raise what made a background write impossible for every later job too (its
        attribute `job` names the job whose write it stopped)."""
        if self.fatal is not None:
            fatal, self.fatal = self.fatal, None
            raise fatal


def run_write(write, on_error, job: str, background: Background) -> None:
    try:
        write()
    except BaseException as err:  # noqa: B036 (a write's failure ends its run; nothing may stop the thread)
        err.job = job
        if isinstance(err, TrackingUnavailable) or disk_full(err):
            background.fatal = background.fatal or err
        else:
            log.error("%s failed while writing its outputs: %s", job, message(err, 300))
        background.failures.append(job)
        try:
            on_error(err)
        except Exception as also:  # the store refuses even that: the run is left for liveness to close
            log.warning("could not record a failed write: %s", message(also, 300))

