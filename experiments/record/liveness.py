"""Whether the process behind a RUNNING run still lives, so that dead runs are closed and live ones never are.

Every run records who runs it (OWNER: host, pid and the process's start time) and, while that
process lives, a HEARTBEAT (unix seconds) refreshed by a background thread (`mlflow.heartbeat_s`).
A RUNNING run is gone when:

- it was made on this host and its process is not running (the pid is free, or now belongs to
  a process that started at another time: pids are reused);
- it was made on another host (through a shared tracking server) and its heartbeat, or its
  start if it has none, is older than the experiment's `mlflow.heartbeat_timeout_s`.

Sweeps close such runs KILLED when they start, with a tag saying why and when.
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone

from .schema import CLOSED, HEARTBEAT, OUTCOME, OWNER, jobs_of, running_runs

log = logging.getLogger(__name__)

def process_start(pid: int) -> str | None:
    """When process pid started (clock ticks since boot), None if it is not running."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        if not os.path.isdir("/proc"):  # no procfs (macOS): the pid alone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return "?"
        return None


@functools.cache
def me() -> str:
    """This process, as OWNER records it."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}"


def gone(tags: dict, start_ms: int, timeout_s: float, now: float | None = None) -> str | None:
    """Why the process of a RUNNING run with these tags is gone, or None if it may still be running."""
    now = time.time() if now is None else now
    host, _, rest = tags.get(OWNER, "").partition(":")
    pid, _, started = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit():
        current = process_start(int(pid))
        if current is None:
            return f"process {pid} on {host} is no longer running"
        if current not in (started, "?"):
            return f"process {pid} on {host} is no longer running (the pid now belongs to another process)"
        return None
    beat = float(tags.get(HEARTBEAT) or start_ms / 1000)
    if now - beat > timeout_s:
        who = f"process {pid} on {host}" if host else "its process (recorded by an older version)"
        return f"no heartbeat from {who} since {iso(beat)} (over {timeout_s:.0f} s)"
    return None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def close_stale_runs(client, experiment_id: str, timeout_s: float) -> list[str]:
    """End KILLED every RUNNING run of the experiment whose process is gone; return their ids."""
    closed = []
    for run in running_runs(client, experiment_id):
        reason = gone(run.data.tags, run.info.start_time, timeout_s)
        if reason is not None:
            close_killed(client, run, reason)
            closed.append(run.info.run_id)
    return closed


def close_killed(client, run, reason: str, outcome: str = "killed") -> None:
    """End a RUNNING run KILLED, with a tag saying why, when and by whom; outcome: killed (its process died, which
    its recipe may have caused) or interrupted (stopped with its sweep: it says nothing about its recipe)."""
    client.set_tag(run.info.run_id, CLOSED, f"{reason}; closed KILLED at {iso(time.time())} by {me()}")
    client.set_tag(run.info.run_id, OUTCOME, outcome)
    client.set_terminated(run.info.run_id, "KILLED")
    log.warning("%s: was RUNNING but %s; closed it KILLED", run.info.run_name, reason)


def owner_tags() -> dict[str, str]:
    return {OWNER: me(), HEARTBEAT: f"{time.time():.0f}"}


class Heartbeat:
    """A daemon thread refreshing HEARTBEAT on a sweep's live runs (one per session: record.session). A run that
    another process has ended meanwhile (this one was paused) gets no more beats: it goes in `closed`, which the
    run's own writes check (record.runs.RunLog.still_mine)."""

    def __init__(self, interval_s: float = 60):
        self.interval_s = interval_s  # mlflow.heartbeat_s: how often, set where a sweep or job starts its runs
        self.closed: set[str] = set()  # runs of this process that another one ended
        self._lock = threading.Lock()
        self._runs: dict[str, object] = {}  # run id -> client
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def add(self, client, run_id: str) -> None:
        with self._lock:
            self._runs[run_id] = client
            self.closed.discard(run_id)
            if self._thread is None:
                self._stopped.clear()
                self._thread = threading.Thread(target=self._beat, name="lenet-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    STOP_WAIT_S = 60  # how long stop() waits for a beat in flight (a store that answers slowly, a server's retries)

    def stop(self) -> None:
        """No more beats (the sweep has ended its runs): a beat in flight ends with its request and writes nothing
        more, and the thread is gone when this returns."""
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.STOP_WAIT_S)

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval_s):
            with self._lock:
                runs = list(self._runs.items())
            for run_id, client in runs:
                try:
                    status = client.get_run(run_id).info.status
                    if self._stopped.is_set():  # stopped while it asked: its runs are being ended, not beaten
                        return
                    if status != "RUNNING":  # ended by another process
                        self.closed.add(run_id)
                        self.remove(run_id)
                        continue
                    client.set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")
                except Exception as err:  # a server down for a while: the next beat tries again
                    log.debug("heartbeat of %s not sent: %s", run_id, err)


def close_sweep_runs(client, experiment_id: str, sweep_id: str, reason: str, wait_s: float = 10.0,
                     job_num: int | None = None, outcome: str = "killed") -> list:
    """End KILLED every job run of this sweep (of one job number, if given) still RUNNING when the sweep stopped
    or its workers died: those whose process is gone at once, a live one after giving it wait_s to end its run
    itself (a parallel launcher's worker, stopped with the sweep). Returns the runs closed."""
    deadline = time.monotonic() + wait_s
    while True:
        running = jobs_of(client, experiment_id, sweep_id, job_num)
        alive = [r for r in running if gone(r.data.tags, r.info.start_time, float("inf")) is None]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for run in running:
        why = gone(run.data.tags, run.info.start_time, float("inf")) or "its process was still running"
        close_killed(client, run, f"{reason} ({why})", outcome)
    return running
