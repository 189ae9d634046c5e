"""Which of a config's runs counts: the newest that ended. A config can have several runs in what is answered
(a sweep resumed after a failure, `resume=false`, an edit of lenet/, a requeued SLURM job, a run another
sweep made and this one reused); every other run of it is superseded, by the one that counts, for a reason
read off the record. Superseded runs stay in the runs table, marked, and enter no number of the answer.
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import CODE, CONFIG_HASH, JOB_NUM, REUSED, SUPERSEDED, SUPERSEDED_BY, children


@dataclass(frozen=True)
class Superseded:
    by: str  # the run id of the run that counts instead (or of the next attempt, while it still runs)
    why: str  # other library code, resume=false, a requeued attempt, ...


def sweep_runs(client, experiment_id: str, parent_id: str) -> list:
    """Every run a sweep holds: each attempt made under its parent, and the FINISHED runs of other sweeps it
    reused (tagged lenet.reused.<run id> on the parent)."""
    reused = [key.removeprefix(REUSED) for key in client.get_run(parent_id).data.tags if key.startswith(REUSED)]
    made = children(client, experiment_id, parent_id)
    known = {r.info.run_id for r in made}
    return made + [client.get_run(r) for r in reused if r not in known]


def superseded(runs: list, missing: dict | None = None) -> dict[str, Superseded]:
    """run id -> Superseded for every run that does not count: per config, every run started before the newest
    one that ended, and every attempt its scheduler started again. missing: run id -> the files it lacks."""
    out: dict[str, Superseded] = {}
    for group in by_config(runs).values():
        group = sorted(group, key=lambda r: r.info.start_time)
        ended = [r for r in group if r.info.status != "RUNNING" and not requeued(r)]
        counts = ended[-1] if ended else None
        for i, run in enumerate(group):
            if run is counts:
                continue
            if requeued(run):  # the next attempt stands for it, whether that has ended or still runs
                later = [r for r in group[i + 1:] if not requeued(r)]
                nxt = counts if counts is not None and counts.info.start_time > run.info.start_time else \
                    (later[-1] if later else None)
                out[run.info.run_id] = Superseded(nxt.info.run_id if nxt else "", "a requeued attempt")
            elif counts is not None and run.info.start_time <= counts.info.start_time:
                out[run.info.run_id] = Superseded(counts.info.run_id, reason(run, counts, missing or {}))
    return out


def job_runs(client, experiment_id: str, parent_id: str) -> list:
    """The sweep's runs that count, one per config."""
    return counted(sweep_runs(client, experiment_id, parent_id))


def counted(runs: list) -> list:
    """The runs that count, one per config, in the sweep's job order (a run still running counts as running)."""
    gone = superseded(runs)
    return sorted((r for r in runs if r.info.run_id not in gone),
                  key=lambda r: (int(r.data.tags.get(JOB_NUM, 0)), r.info.start_time))


def requeued(run) -> bool:
    """An attempt its scheduler started again: it never counts. (The sweep's own marks, with SUPERSEDED_BY, are a
    copy of this module's decision for MLflow's UI; the decision is made again from the record each time.)"""
    return SUPERSEDED in run.data.tags and SUPERSEDED_BY not in run.data.tags


def by_config(runs: list) -> dict[str, list]:
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.data.tags.get(CONFIG_HASH, run.info.run_id), []).append(run)
    return groups


def reason(old, new, missing: dict) -> str:
    """Why a newer run of the same config was made after old, as far as the record tells."""
    codes = old.data.tags.get(CODE), new.data.tags.get(CODE)
    if all(codes) and codes[0] != codes[1]:
        return "other library code"  # an edit of lenet/ trains again (reuse_other_code=true would have kept it)
    if old.info.status == "RUNNING":  # a dead process's run that no sweep has closed yet
        return "trained again while it still showed RUNNING"
    if old.info.status != "FINISHED":
        return f"trained again after it ended {old.info.status}"  # what a resumed sweep does
    if missing.get(old.info.run_id):
        return "its files were gone"  # resume trains a FINISHED run again whose files were deleted
    return "resume=false"  # the same code and a FINISHED run with its files: only resume=false trains it again
