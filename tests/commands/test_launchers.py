"""The same sweep command with other launchers, whose jobs run in worker processes: one parent, one child per
job, and every way a worker ends named (a sweeper and a tracking server in-process: tests/store/test_sweeps.py)."""
import os
import signal

import pytest

from ..support.commands import printed, run, start
from ..support.faults import memory_limit
from ..support.store import client_of, runs_in, the_sweep


def test_submitit_local_runs_the_sweep_through_submitit(runs_dir):
    run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", "hydra/launcher=submitit_local",
        f"runs_dir={runs_dir}")
    parent, children = the_sweep(runs_dir)
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["classic", "d2l"]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert list(runs_dir.glob("hydra/multirun/*/.submitit/*/*_log.out"))  # submitit's own job logs


@pytest.mark.parametrize("sig, to", [(signal.SIGTERM, "the command"), (signal.SIGINT, "its group")])
def test_a_submitit_local_sweep_stopped_stops_its_jobs_before_its_parent_closes(runs_dir, sig, to):
    # `kill PID` reaches the sweep's process only; Ctrl-C reaches every process of the terminal's group (the
    # sweep, submitit's controllers, their jobs). Either way every job stops, its run KILLED, before the parent.
    pidfile = runs_dir / "sweep.pid"
    target = f"pid:{pidfile}" if to == "the command" else "group"
    proc = start("experiments.run", "-m", "model=classic,d2l", "hydra/launcher=submitit_local", "trainer.epochs=3",
                 "mlflow.log_model=false", "model._target_=tests.support.faults.signalling_lenet",
                 f"+model.signal_name={sig.name}", f"+model.to={target}", f"+model.tally={runs_dir}/signals",
                 f"runs_dir={runs_dir}", session=True)
    pidfile.write_text(str(proc.pid))
    try:
        output = proc.communicate(timeout=180)[0]
        with pytest.raises(ProcessLookupError):  # no process of the sweep's group lives on: every job stopped
            os.killpg(proc.pid, 0)
    finally:
        if proc.poll() is None or group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig and "Traceback" not in output, output
    jobs = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    # Both jobs carry the fault: the first to start its second epoch sends the signal (which one depends on the
    # machine's load), and the other's run exists if its job made one before the stop.
    names = sorted(r.info.run_name for r in jobs)
    assert names in (["classic"], ["d2l"], ["classic", "d2l"]), output
    assert {r.info.status for r in jobs} == {"KILLED"} and parent.info.status == "KILLED"
    assert max(r.info.end_time for r in jobs) <= parent.info.end_time  # none ended, or began, after its parent
    assert max(r.info.start_time for r in jobs) <= parent.info.end_time
    assert f"Not counted: {'; '.join(f'{n} 1 interrupted' for n in names)}" in output


def test_a_submitit_job_sent_sigterm_while_it_starts_up_stops_there(runs_dir):
    # submitit's job ignores SIGTERM (it logs "Bypassing signal SIGTERM") until the job's own handler takes it: a job
    # that its sweep's stop reached while it was still starting up trained to its end, FINISHED in a stopped sweep,
    # and the stop waited for it (seen as a flaky submitit stop test).
    proc = run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", "hydra/launcher=submitit_local",
               "+hydra.callbacks.signalled._target_=tests.support.faults.SignalledAsItStarts",
               "mlflow.log_model=false", f"runs_dir={runs_dir}", check=False)
    output = printed(proc)
    assert proc.returncode == 1 and "Traceback" not in output, output
    runs = {r.info.run_name: r.info.status for r in runs_in(runs_dir)}
    assert runs == {"classic": "FINISHED"}, output  # d2l stopped before it made a run
    (said,) = [line for line in output.splitlines() if "its process died without a result" in line]
    assert said.startswith("model=d2l "), output  # the job, by its overrides: it has no run to be named by
    assert runs_in(runs_dir, "sweep")[0].info.status == "FAILED"


def test_a_submitit_local_job_the_out_of_memory_killer_ends_is_named_so_and_its_run_closed(runs_dir):
    # In a memory cgroup of 4 GiB one job asks for 6 GiB as its second epoch starts; the other job goes on, unless
    # the kernel, not yet given back the first one's memory, kills it too (seen in CI): then it is named the same.
    with memory_limit(4 << 30) as cgroup:
        proc = start("experiments.run", "-m", "model=classic,d2l", "hydra/launcher=submitit_local",
                     "trainer.epochs=2", "mlflow.log_model=false", "model._target_=tests.support.faults.hungry_lenet",
                     "+model.gigabytes=6", f"+model.tally={runs_dir}/hungry", f"runs_dir={runs_dir}", cgroup=cgroup)
        output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1 and "Traceback" not in output, output
    jobs = runs_in(runs_dir)
    killed = [r for r in jobs if r.info.status == "KILLED"]
    assert killed and {r.info.status for r in jobs if r not in killed} <= {"FINISHED"}, output
    said = [line for line in output.splitlines() if "out-of-memory killer" in line]
    closed = [line for line in said if "was RUNNING but its process was killed by the kernel's out-of-memory" in line]
    failed = [line for line in said if ": its process was killed by the kernel's out-of-memory killer (memory cgroup "
              "/lenet-test-" in line]
    # per killed job, its run closed; Hydra raises the first failed job's error, with what to do (both killed: one)
    assert len(closed) == len(killed) and len(failed) == 1 and len(said) == len(closed) + 1, output
    assert {line.split("] ")[-1].split(":")[0] for line in closed} == {r.info.run_name for r in killed}, output
    assert all("whose limit is 4.0 GiB); lower trainer.batch_size, or run fewer jobs at once; its log: " in line
               for line in failed), output
    for job in killed:
        assert "out-of-memory killer" in job.data.tags["lenet.closed"] and job.data.tags["lenet.outcome"] == "killed"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_eight_jobs_four_at_a_time_lose_nothing(runs_dir):
    proc = run("experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam", "seed=0,1", "trainer.epochs=2",
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", f"runs_dir={runs_dir}",
               "data.normalize=none", "trainer.batch_size=256")  # the d2l book's settings: no run diverges
    assert "locked" not in printed(proc)
    jobs = runs_in(runs_dir)
    client = client_of(runs_dir)
    assert len(jobs) == 8 and {r.info.status for r in jobs} == {"FINISHED"}
    assert len({r.data.tags["lenet.config_hash"] for r in jobs}) == 8
    for job in jobs:
        for metric in ("train_loss", "val_acc", "samples_per_second"):
            assert [m.step for m in client.get_metric_history(job.info.run_id, metric)] == [1, 2]
        assert "test_acc" in job.data.metrics
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.epochs=2", "trainer.progress=lines",
          "mlflow.log_model=false", "model._target_=tests.support.faults.signalling_lenet"]


def test_a_joblib_worker_that_dies_is_named_its_run_closed_and_its_job_run_again(runs_dir):
    # The worker of the job that first starts its second epoch kills itself (kill -9, as the out-of-memory killer
    # does); the two run side by side, so which one it is depends on the machine's load.
    proc = run("experiments.run", "-m", "model=classic,d2l", *JOBLIB, "+model.signal_name=SIGKILL",
               f"+model.tally={runs_dir}/signals", f"runs_dir={runs_dir}")
    output = printed(proc)
    assert "Traceback" not in output and "TerminatedWorkerError" not in output
    (died,) = [line for line in output.splitlines() if "worker process died" in line]  # one line for the event
    jobs = runs_in(runs_dir)
    names = {r.info.run_name for r in jobs if r.info.status == "KILLED"}
    assert names and all(name in died.split("pool with it: ")[1] for name in names), died  # named by its run
    assert "closed KILLED; launched again in a fresh pool" in died, died
    assert sorted(r.info.status for r in jobs if r.info.status != "KILLED") == ["FINISHED", "FINISHED"]
    for killed in (r for r in jobs if r.info.status == "KILLED"):  # the dead worker's attempt (and any it took along)
        assert "its joblib worker died" in killed.data.tags["lenet.closed"]
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED" and "2 of 2 runs finished" in output


def test_a_joblib_worker_the_out_of_memory_killer_ends_is_named_so_and_its_job_run_again(runs_dir):
    # The sweep in a memory cgroup of 3 GiB; one job asks for 5 GiB as its second epoch starts: the kernel kills it.
    with memory_limit(3 << 30) as cgroup:
        proc = start("experiments.run", "-m", "model=classic,d2l", *JOBLIB[:-1], "model._target_=tests.support.faults."
                     "hungry_lenet", "+model.gigabytes=5", f"+model.tally={runs_dir}/hungry", f"runs_dir={runs_dir}",
                     cgroup=cgroup)
        output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0 and "Traceback" not in output, output
    (died,) = [line for line in output.splitlines() if "took joblib's pool with it" in line]
    assert "a worker process was killed by the kernel's out-of-memory killer (memory cgroup /lenet-test-" in died
    assert "whose limit is 3.0 GiB" in died and "lower hydra.launcher.n_jobs or trainer.batch_size" in died
    jobs = runs_in(runs_dir)
    assert sorted(r.info.status for r in jobs if r.info.status != "KILLED") == ["FINISHED", "FINISHED"]
    killed = [r for r in jobs if r.info.status == "KILLED"]
    assert killed and all("out-of-memory killer" in r.data.tags["lenet.closed"] for r in killed)


def test_joblibs_resource_tracker_dying_mid_sweep_costs_one_line_not_its_tracebacks(runs_dir):
    # The first job to end an epoch kills joblib's helper process (kill -9); loky starts another.
    proc = run("experiments.run", "-m", "model=classic,d2l", *JOBLIB, "+model.signal_name=SIGKILL",
               "+model.to=resource_tracker", f"+model.tally={runs_dir}/signals", f"runs_dir={runs_dir}")
    output = printed(proc)
    assert "Traceback" not in output and "KeyError" not in output and "Some resources might leak" not in output
    (said,) = [line for line in output.splitlines() if "resource tracker" in line]
    assert "died and was started again" in said and "harmless" in said, output
    assert {r.info.status for r in runs_in(runs_dir)} == {"FINISHED"} and "2 of 2 runs finished" in output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_joblib_sweep_stopped_by_a_signal_to_its_process_group_leaves_no_run_running(runs_dir, sig):
    # A batch system's time limit sends SIGTERM to the whole process group; Ctrl-C sends SIGINT to it.
    proc = start("experiments.run", "-m", "model=classic,d2l", *JOBLIB, f"+model.signal_name={sig.name}",
                 "+model.to=group", f"+model.tally={runs_dir}/signals", f"runs_dir={runs_dir}", session=True)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 128 + sig and "Traceback" not in output, output
    assert "KILLED by ;" not in output
    jobs = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    assert jobs and {r.info.status for r in jobs} == {"KILLED"} and parent.info.status == "KILLED"
