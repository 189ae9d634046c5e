"""hydra/launcher=submitit_local: each job in a process of its own through submitit, stopped with its sweep.

The launcher class is hydra_plugins.lenet_sweeps.LocalLauncher; what it does is here. submitit's own local
launcher starts each job under a controller process and waits on the jobs' results, and a sweep stopped
there goes wrong both ways a user stops it:

- SIGTERM to the command (or SIGHUP: a closed terminal) stops the sweep's process, not its jobs: a job goes on,
  and one not yet started makes and trains a run under the parent just closed KILLED.
- Ctrl-C reaches every process of the terminal's group: each controller prints a KeyboardInterrupt traceback
  into the sweep's output and kills its job a second later, whether it has closed its run or not.

Here the controllers start with Ctrl-C and SIGHUP ignored (they and their jobs inherit it), so whichever way the
sweep's process is stopped, it stops its jobs itself: SIGTERM to each controller, which hands it to its job
(the job's run ends KILLED, as under scancel), and it waits for them to exit before the sweep's parent run
closes. Nothing runs on under a closed parent, and the output is the sweep's own one line per job.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import time
from typing import Sequence

from hydra.core.utils import JobReturn

from . import close_job_runs, oom, submitted

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the jobs' processes are looked at
STOP_WAIT_S = 30.0  # after SIGTERM: how long a job gets to close its run and exit
TERMINAL = (signal.SIGINT, signal.SIGHUP)  # the signals a terminal sends its whole foreground group


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """LocalLauncher.launch: start the jobs, wait for them; on Ctrl-C, SIGTERM or SIGHUP stop them, then re-raise."""
    import submitit

    params = launcher.params
    executor = submitit.AutoExecutor(cluster="local", folder=params["submitit_folder"])
    kills = oom.counted()
    with terminal_signals_ignored_by_children(executor):
        jobs = submitted.submit(launcher, job_overrides, initial_job_idx, executor, set())
    try:
        while not all(job.done() for job in jobs):
            time.sleep(POLL_S)
    except KeyboardInterrupt:  # cli.Interrupted: the sweep was stopped
        stop(jobs)
        raise
    return [died(launcher.config, job, kills) if not job.paths.result_pickle.exists() else
            submitted.job_return(job, "submitit") for job in jobs]


def died(config, job, kills: oom.Kills) -> JobReturn:
    """A job whose process ended without a result (kill -9, the out-of-memory killer): its run closed KILLED, and
    a FAILED return saying which, in a line."""
    memory = oom.killed_since(kills)
    how = f"was {memory}" if memory else "died without a result (killed by hand, or by the system for memory)"
    closed = close_job_runs(config, [submitted.job_num(job)], f"its process {how}")
    name = closed.get(submitted.job_num(job)) or submitted.job_name(job)
    hint = "; lower trainer.batch_size, or run fewer jobs at once" if memory else ""
    return submitted.failed(job, f"{name}: its process {how}{hint}; its log: {job.paths.stdout}")


@contextlib.contextmanager
def terminal_signals_ignored_by_children(executor):
    """While the executor starts each job's controller: Ctrl-C and SIGHUP ignored in this process, so that the
    controller starts with them ignored (a disposition exec keeps), restored at once after. A signal in those
    few milliseconds is lost (pressing Ctrl-C again stops the sweep)."""
    local = executor._executor
    start = local._submit_command

    def submit_ignoring(command):
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in TERMINAL
                    if signal.getsignal(sig) is not None}
        try:
            return start(command)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    local._submit_command = submit_ignoring
    try:
        yield
    finally:
        del local._submit_command


def stop(jobs: list) -> None:
    """SIGTERM to each live job's controller (it hands it on to the job, which ends its run KILLED); wait for them
    to exit, then kill those that did not (their runs the sweep's end closes KILLED)."""
    live = [job for job in jobs if job._process is not None and job._process.poll() is None]
    if not live:
        return
    log.warning("stopping the sweep's %d running job process(es)", len(live))
    for job in live:
        job._process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and any(job._process.poll() is None for job in live):
        time.sleep(0.1)
    for job in live:
        if job._process.poll() is None:
            log.error("%s: its process did not stop %g s after SIGTERM; killed", submitted.job_name(job),
                      STOP_WAIT_S)
            job._process.kill()
            job._process.wait()
