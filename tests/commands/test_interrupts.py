"""Ctrl-C, SIGTERM and kill -9 in the middle of a real sweep: runs end KILLED or are closed later; a rerun resumes.

The signal comes from the job's own model when its first epoch ends (tests.support.faults), so the
sweep is stopped at a known point rather than at whatever line a test saw in time.
"""
import signal
import time

import pytest

from experiments.record.liveness import close_killed, me

from ..support.commands import printed, run, start
from ..support.store import client_of, runs_in



def sweep_command(runs_dir, *fault):
    """A two-job sweep whose first job's model sends a signal when its second epoch starts, the first time only:
    the same command run again is the same sweep, and completes."""
    return ["experiments.run", "-m", "model=classic,d2l", "trainer.epochs=2", "trainer.progress=lines",
            "mlflow.log_model=false", f"runs_dir={runs_dir}", "model._target_=tests.support.faults.signalling_lenet",
            f"+model.tally={runs_dir}/signals", *fault]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_sweep_ends_killed_and_a_rerun_resumes_it(runs_dir, sig):
    command = sweep_command(runs_dir, f"+model.signal_name={sig.name}", "+model.twice=true")  # pressed twice
    proc = start(*command)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + sig  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    assert "Traceback" not in output
    assert output.count(f"classic: KILLED by {sig.name}; rerun the same command") == 1
    assert "epoch 1/2" in output and "epoch 2/2" not in output  # stopped where the signal came: in epoch 2
    assert "Sweep KILLED: 0 of 1 runs finished" in output and "Not counted: classic 1 interrupted" in output
    (job,) = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    assert job.info.status == parent.info.status == "KILLED"
    assert [m.step for m in client_of(runs_dir).get_metric_history(job.info.run_id, "train_loss")] == [1]

    again = run(*command)  # the same sweep, this time not interrupted
    assert "Resuming sweep" in printed(again)
    assert sorted(r.info.status for r in runs_in(runs_dir)) == ["FINISHED", "FINISHED", "KILLED"]
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED"


def test_runs_of_a_killed_process_are_closed_when_the_sweep_is_run_again(runs_dir):
    command = sweep_command(runs_dir, "+model.signal_name=SIGKILL")  # kill -9, the OOM killer: nothing can close
    proc = start(*command)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (job,) = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    assert job.info.status == parent.info.status == "RUNNING"
    client = client_of(runs_dir)
    experiment_id = client.get_experiment_by_name("lenet-sweeps").experiment_id
    live = client.create_run(experiment_id, run_name="this test's own run", tags={"lenet.owner": me()})

    again = run(*command)
    assert f"was RUNNING but process {proc.pid} on " in printed(again)
    closed = client.get_run(job.info.run_id)
    assert closed.info.status == "KILLED"
    assert f"process {proc.pid} on" in closed.data.tags["lenet.closed"]
    assert "closed KILLED at" in closed.data.tags["lenet.closed"]
    assert client.get_run(live.info.run_id).info.status == "RUNNING"  # a live process's run is never touched
    assert sorted(r.info.status for r in runs_in(runs_dir)) == ["FINISHED", "FINISHED", "KILLED"]
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED" and parent.info.run_id == closed.data.tags["mlflow.parentRunId"]
    assert "lenet.closed" not in parent.data.tags  # it was closed KILLED, then resumed: that is history now


@pytest.mark.parametrize("after_s", [0.5, 2.0])  # importing torch and MLflow; composing and checking every job
def test_ctrl_c_while_the_command_starts_is_one_line_and_nothing_is_written(tmp_path, after_s):
    proc = start("experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam", f"runs_dir={tmp_path / 'runs'}")
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert (proc.returncode, output) == (130, "interrupted while starting: nothing was run or written\n")
    assert list(tmp_path.iterdir()) == []


def test_a_process_paused_past_the_heartbeat_timeout_never_writes_over_the_record_closed_meanwhile(runs_dir):
    command = sweep_command(runs_dir, "+model.signal_name=SIGSTOP", "mlflow.heartbeat_s=1")  # it stops itself
    proc = start(*command)
    deadline = time.monotonic() + 120
    while open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T":  # stopped at epoch 2
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    client = client_of(runs_dir)
    (job,) = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    for paused in (job, parent):  # as a sweep on another host does once the heartbeats stop (liveness.close_killed)
        close_killed(client, paused, "no heartbeat from process 1 on elsewhere since 2026-11-30T00:00:00+00:00 "
                                  "(over 600 s)")
    proc.send_signal(signal.SIGCONT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1 and "Traceback" not in output, output
    (error,) = [line for line in output.splitlines() if line.startswith("error: ")]
    assert "was paused (suspended, stopped) for longer than the heartbeat timeout" in error
    job, parent = client.get_run(job.info.run_id), client.get_run(parent.info.run_id)
    assert job.info.status == parent.info.status == "KILLED"  # never FINISHED over the closing
    assert "came back at" in job.data.tags["lenet.came_back"] and "left it KILLED" in job.data.tags["lenet.came_back"]
    assert "came back at" in parent.data.tags["lenet.came_back"]
    assert [m.step for m in client.get_metric_history(job.info.run_id, "train_loss")] == [1]  # nothing logged after

    again = run(*command)  # the same sweep, resumed: its parent's closing is history now
    assert "Resuming sweep" in printed(again)
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED" and "after it had ended KILLED" in parent.data.tags["lenet.resumed"]
    assert "lenet.closed" not in parent.data.tags and "lenet.came_back" not in parent.data.tags


def on_a_terminal(*args: str):
    """python -m ARGS as a terminal's foreground job: a session of its own whose controlling terminal is a new pty;
    returns the process and the terminal's master end (closing it hangs the terminal up, as closing a window or a
    dropped ssh session does)."""
    import fcntl
    import os
    import pty
    import subprocess
    import sys
    import termios

    from experiments.config import PROJECT_ROOT

    from ..support.commands import ENV

    master, slave = pty.openpty()

    def controlled_by_the_pty():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=PROJECT_ROOT, stdin=slave, stdout=slave, stderr=slave,
                            env=ENV, preexec_fn=controlled_by_the_pty)
    os.close(slave)
    return proc, master


def test_a_closed_terminal_ends_the_sweep_as_sigterm_does_and_a_rerun_resumes(runs_dir):
    import os
    import threading

    marker = runs_dir / "second-epoch"
    command = ["experiments.run", "-m", "model=classic,d2l", "trainer.epochs=2", "trainer.progress=lines",
               "mlflow.log_model=false", f"runs_dir={runs_dir}", "model._target_=tests.support.faults.waiting_lenet",
               f"+model.marker={marker}"]
    proc, master = on_a_terminal(*command)
    stop, seen = threading.Event(), []
    reader = threading.Thread(target=lambda: seen.append(drain(master, stop)), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not marker.exists():  # the job waits there: its first epoch is logged
        assert time.monotonic() < deadline and proc.poll() is None, seen
        time.sleep(0.1)
    stop.set()
    reader.join()  # (a read in progress would keep the terminal open)
    os.close(master)  # the terminal closes: the kernel sends SIGHUP to its foreground job
    assert proc.wait(timeout=120) == 129
    (job,) = runs_in(runs_dir)
    (parent,) = runs_in(runs_dir, "sweep")
    assert job.info.status == parent.info.status == "KILLED"  # not left RUNNING for the next sweep to find
    assert job.data.tags["lenet.outcome"] == "interrupted"
    assert "mlflow.note.content" in parent.data.tags  # its summary was written, though nobody could read it
    again = run(*command)  # the marker is there: this time it trains through
    assert "Resuming sweep" in printed(again)
    assert sorted(r.info.status for r in runs_in(runs_dir)) == ["FINISHED", "FINISHED", "KILLED"]


def drain(master: int, stop) -> str:
    """What the process wrote to its terminal (read so that its writes never block), until stop is set."""
    import os
    import select

    out = b""
    while not stop.is_set():
        if select.select([master], [], [], 0.1)[0]:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    return out.decode(errors="replace")


def test_under_nohup_a_hangup_changes_nothing(runs_dir):
    import subprocess
    import sys

    from experiments.config import PROJECT_ROOT

    from ..support.commands import ENV

    # nohup ignores SIGHUP before the command starts: the sweep keeps it ignored, and its job's own SIGHUP (sent
    # as its second epoch starts) changes nothing.
    proc = subprocess.run([sys.executable, "-m", "experiments.run", "-m", "model=classic", "trainer.epochs=2",
                           "trainer.limit_batches=2", "mlflow.log_model=false", f"runs_dir={runs_dir}",
                           "model._target_=tests.support.faults.signalling_lenet", "+model.signal_name=SIGHUP"],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r.info.status for r in runs_in(runs_dir)] == ["FINISHED"]
