"""Ctrl-C, SIGTERM and kill -9 in the middle of a real sweep: runs end KILLED or are closed later; a rerun resumes."""
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from experiments.config import PROJECT_ROOT
from experiments.liveness import me

from .commands import ENV, run, runs


def start_sweep(runs_dir, *overrides, epochs=12):
    """The sweep as from a terminal: a shell's background job (CI may be one) starts with SIGINT ignored."""
    command = [sys.executable, "-m", "experiments.run", "-m", "model=classic,d2l", f"trainer.epochs={epochs}",
               "trainer.progress=lines", f"runs_dir={runs_dir}", *overrides]
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return command, proc


def signal_at_first_epoch(proc, *signals, apart=0.05):
    """Send signals once the first job's first epoch is logged; return everything the sweep printed."""
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if "epoch 1/12" in line:
            for sig in signals:
                proc.send_signal(sig)
                time.sleep(apart)
            break
    return "".join(printed) + proc.communicate(timeout=120)[0]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_sweep_ends_killed_and_a_rerun_resumes_it(runs_dir, sig):
    command, proc = start_sweep(runs_dir)
    printed = signal_at_first_epoch(proc, sig, sig)  # pressed twice, as people do
    assert proc.returncode == 128 + sig  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    assert "Traceback" not in printed
    assert printed.count(f"model=classic: KILLED by {signal.Signals(sig).name}; rerun the same command") == 1
    assert "Sweep KILLED: 0 of 1 runs finished" in printed and "| KILLED " in printed  # the summary still printed
    _, jobs = runs(runs_dir)
    (parent,) = runs(runs_dir, "sweep")[1]
    assert [r.info.status for r in jobs] == ["KILLED"] and parent.info.status == "KILLED"

    again = run(*command[2:])
    assert "Resuming sweep" in again.stdout + again.stderr
    _, jobs = runs(runs_dir)
    assert sorted(r.info.status for r in jobs) == ["FINISHED", "FINISHED", "KILLED"]
    (parent,) = runs(runs_dir, "sweep")[1]
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_runs_of_a_killed_process_are_closed_when_the_sweep_is_run_again(runs_dir):
    command, proc = start_sweep(runs_dir)
    signal_at_first_epoch(proc, signal.SIGKILL)  # kill -9, the OOM killer, a power cut: nothing can close them
    _, (job,) = runs(runs_dir)
    (parent,) = runs(runs_dir, "sweep")[1]
    assert job.info.status == parent.info.status == "RUNNING"
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    experiment_id = client.get_experiment_by_name("lenet-sweeps").experiment_id
    live = client.create_run(experiment_id, run_name="this test's own run", tags={"lenet.owner": me()})

    again = run(*command[2:])
    assert f"was RUNNING but process {proc.pid} on " in again.stdout + again.stderr
    closed = client.get_run(job.info.run_id)
    assert closed.info.status == "KILLED"
    assert f"process {proc.pid} on" in closed.data.tags["lenet.closed"] and "closed KILLED at" in \
        closed.data.tags["lenet.closed"]
    assert client.get_run(live.info.run_id).info.status == "RUNNING"  # a live process's run is never touched
    _, jobs = runs(runs_dir)
    assert sorted(r.info.status for r in jobs) == ["FINISHED", "FINISHED", "KILLED"]
    (parent,) = runs(runs_dir, "sweep")[1]
    assert parent.info.status == "FINISHED" and parent.info.run_id == closed.data.tags["mlflow.parentRunId"]




@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.5, 2.0])  # importing torch and MLflow; composing and checking every job
def test_ctrl_c_while_the_command_starts_is_one_line_and_nothing_is_written(tmp_path, after_s):
    proc = subprocess.Popen([sys.executable, "-m", "experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam",
                             f"runs_dir={tmp_path / 'runs'}"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    printed = proc.communicate(timeout=60)[0]
    assert (proc.returncode, printed) == (130, "interrupted while starting: nothing was run or written\n")
    assert list(tmp_path.iterdir()) == []
