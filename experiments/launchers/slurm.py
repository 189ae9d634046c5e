"""hydra/launcher=slurm: submitit's SLURM launcher, made to fail loudly instead of waiting silently.

The launcher class itself is hydra_plugins.lenet_sweeps.SlurmLauncher (Hydra takes launchers only
from the hydra_plugins package); what it does is here.

Three things the plain launcher leaves to chance, each of which hangs a sweep or leaves its record
wrong:

- A request the cluster cannot satisfy (a GPU on a CPU-only partition, more CPUs or memory than a
  node has, more time than the partition allows). Under SLURM's default EnforcePartLimits=NO such
  a job stays PENDING for ever. `preflight` compares the request with the partition's limits, read
  from `scontrol`, before anything is submitted, and names the resource in one line; a refusal by
  sbatch itself is one line too.
- A sweep stopped by Ctrl-C or SIGTERM: its jobs are cancelled (scancel), and their runs end
  KILLED (the jobs' own signal handling, then `close_runs` for any a hard kill left RUNNING).
- A job that dies without a result (killed hard, node lost). submitit learns a job's end from
  `sacct`, which a cluster without an accounting daemon does not have, and waits for ever. Here a
  job that has left `squeue` for `dead_job_grace_s` without writing its result has died: its run is
  closed KILLED and the job counts as failed, so the wait is bounded by the job's time limit + the grace.
- A job that waits PENDING (its node drained or down, the partition full): the sweep says why every
  `pending_report_s`, and after `pending_timeout_min` cancels it and lists it as not run. A job its
  node's failure requeued runs again; its first attempt's run is marked superseded (launchers).
"""
from __future__ import annotations

import logging
import subprocess
import time
from typing import Sequence

from hydra.core.utils import JobReturn

from ..errors import Abort
from ..record.liveness import close_killed
from . import submitted
from .slurm_cluster import final_state, queue_states, queued

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 60  # after scancel: SLURM's KillWait (30 s by default) then SIGKILL
WATCH = ("poll_s", "dead_job_grace_s", "pending_report_s", "pending_timeout_min")  # ours, not sbatch's


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """SlurmLauncher.launch: submit the jobs, wait for each to return or die; cancel them on Ctrl-C/SIGTERM."""
    jobs = submit(launcher, job_overrides, initial_job_idx)
    try:
        dead = wait(jobs, launcher.params)
    except KeyboardInterrupt:  # process.Interrupted: Ctrl-C or SIGTERM of the sweep
        log.warning("cancelling the sweep's %d SLURM job(s)", len(jobs))
        cancel(launcher.config, jobs)
        raise
    return [dead_return(launcher.config, job, dead[job]) if job in dead else submitted.job_return(job, "SLURM")
            for job in jobs]


def submit(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit one array job; sbatch's refusal (e.g. under EnforcePartLimits=ALL) in one line."""
    import submitit

    params = launcher.params
    executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                     slurm_max_num_timeout=params.get("max_num_timeout", 0))
    try:
        jobs = submitted.submit(launcher, job_overrides, initial_job_idx, executor, set(WATCH))
    except Exception as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "error" in ln.lower()] or [str(err).strip()]
        raise Abort(f"SLURM refused the sweep's jobs: {lines[-1]}") from None
    log.info("submitted SLURM job(s) %s; their logs: %s", ", ".join(j.job_id for j in jobs),
             str(params["submitit_folder"]).replace("%j", "<job id>"))
    return jobs


def cancel(config, jobs: list) -> None:
    """scancel the jobs (SIGTERM: each job ends its run KILLED), wait for them, close what a hard kill left."""
    subprocess.run(["scancel", *sorted({j.job_id.split("_")[0] for j in jobs})], capture_output=True, timeout=30)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline and queued([j.job_id for j in jobs]) != set():
        time.sleep(0.5)
    close_runs(config, jobs, "its SLURM job was cancelled with the sweep", "interrupted")


def dead_return(config, job, why: str) -> JobReturn:
    close_runs(config, [job], why)
    return submitted.failed(job, f"SLURM job {job.job_id} {why}; its log: {job.paths.stdout}")


def close_runs(config, jobs: list, reason: str, outcome: str = "killed") -> None:
    """End KILLED the runs these jobs left RUNNING (found by sweep id and Hydra job number)."""
    from ..record.schema import jobs_of, read_sweep
    from ..record.store import connect

    sweep = read_sweep(config.hydra.sweep.dir)
    if sweep is None:
        return
    client, experiment_id = connect(config.mlflow.tracking_uri, config.mlflow.experiment,
                                    config.mlflow.server_patience_s)
    for job in jobs:
        for run in jobs_of(client, experiment_id, sweep["sweep_id"], submitted.job_num(job)):
            close_killed(client, run, f"{reason} (SLURM job {job.job_id})", outcome)


def wait(jobs: list, params: dict) -> dict:
    """Wait until every job has a result, has died, or has waited PENDING too long (cancelled); {job: why}.

    A job gone from the queue for dead_job_grace_s without a result has died; one PENDING for
    pending_timeout_min is cancelled; while any is PENDING, why is said every pending_report_s.
    """
    poll_s, grace_s, report_s = params["poll_s"], params["dead_job_grace_s"], params["pending_report_s"]
    timeout_s = params["pending_timeout_min"] * 60
    missing_since: dict = {}
    pending_since: dict = {}
    dead: dict = {}
    reported = time.monotonic()
    while True:
        states = queue_states([j.job_id for j in jobs if j not in dead])
        # Done: a result, and out of the queue (a requeued job has its first attempt's result, and runs again).
        waiting = [j for j in jobs if j not in dead and not (j.paths.result_pickle.exists() and states is not None
                                                                 and j.job_id not in states)]
        if not waiting:
            return dead
        now = time.monotonic()
        for job in waiting:
            state, reason = (states or {}).get(job.job_id, ("", ""))
            if states is None or state or job.paths.result_pickle.exists():
                missing_since.pop(job, None)
            elif now - missing_since.setdefault(job, now) > grace_s:
                dead[job] = ended_how(final_state(job.job_id), params) or \
                    f"left the queue without a result (killed, timed out or its node lost; no result " \
                    f"{grace_s:g} s later)"
            if state == "PENDING":
                since = pending_since.setdefault(job, (now, reason))[0]
                pending_since[job] = (since, reason)
                if now - since > timeout_s:
                    dead[job] = give_up(job, reason, now - since)
            else:
                pending_since.pop(job, None)
        if pending_since and now - reported >= report_s:
            reported = now
            for job, (since, reason) in pending_since.items():
                if job not in dead:
                    log.warning("waiting: SLURM job %s (%s) is PENDING since %.0f s: %s; the sweep gives up on it "
                                "after %g min (hydra.launcher.pending_timeout_min)", job.job_id,
                                submitted.job_name(job), now - since, reason, params["pending_timeout_min"])
        time.sleep(poll_s)


def ended_how(state: str | None, params: dict) -> str | None:
    """What ended a job that left no result, in words and with what to change, where SLURM's final state says."""
    if state == "OUT_OF_MEMORY":
        return (f"was killed for memory by SLURM (OUT_OF_MEMORY: above hydra.launcher.mem_gb={params.get('mem_gb')}); "
                f"raise hydra.launcher.mem_gb or lower trainer.batch_size")
    if state == "TIMEOUT":
        return (f"was stopped by SLURM at its time limit (TIMEOUT: hydra.launcher.timeout_min="
                f"{params.get('timeout_min')}); raise hydra.launcher.timeout_min")
    if state == "NODE_FAIL":
        return "lost its node (SLURM: NODE_FAIL); rerun the same command to run it again"
    return None


def give_up(job, reason: str, waited_s: float) -> str:
    """Cancel a job that waited PENDING too long; why, in a line."""
    subprocess.run(["scancel", job.job_id], capture_output=True, timeout=30)
    log.error("%s: SLURM job %s waited PENDING %.0f s (%s): cancelled, not run", submitted.job_name(job), job.job_id,
              waited_s, reason)
    return f"waited PENDING {waited_s:.0f} s ({reason}) and was cancelled, not run; rerun the same command when the " \
           f"cluster can run it"
