"""A tracking server that goes away: a restart is waited out; one that stays down stops the sweep in one line.

The job's model stops the server as its second epoch starts (tests.support.faults, reading the server's pid
file) and trains on once the server is gone. In the first test the test starts it again as soon as the sweep
says it is waiting (a restart) and the patience is long; in the second it stays down and the patience is turned
down, so that giving up is not a wait of the default 120 s.
"""
import time

from ..support.commands import printed, run, start
from ..support.servers import MlflowServer
from ..support.store import client_of, the_sweep

RESTART_PATIENCE_S = 60  # far more than this machine takes to restart `mlflow server`, even loaded
DOWN_PATIENCE_S = 3


def sweep_command(server: MlflowServer, tmp_path, models: str, patience_s: float) -> list[str]:
    return ["experiments.run", "-m", f"model={models}", "trainer.epochs=2", "trainer.progress=lines",
            f"mlflow.tracking_uri={server.uri}", f"mlflow.server_patience_s={patience_s}", "mlflow.log_model=false",
            f"runs_dir={tmp_path / 'runs'}", "model._target_=tests.support.faults.signalling_lenet",
            "+model.signal_name=SIGTERM", f"+model.to=pidfile:{server.pid_file}", f"+model.tally={tmp_path}/stops",
            "+model.until_gone=true"]


def test_a_server_that_restarts_is_waited_out_and_nothing_is_lost(tmp_path):
    server = MlflowServer(tmp_path).start()
    try:
        proc = start(*sweep_command(server, tmp_path, "classic", RESTART_PATIENCE_S))
        lines = []
        for line in proc.stdout:  # the server is started again once the sweep says it is waiting for it
            lines.append(line)
            if f"does not answer; waiting up to {RESTART_PATIENCE_S} s for it" in line:
                server.proc.wait()
                server.start()  # what an upgrade or a service manager does
        proc.wait(timeout=60)
        output = "".join(lines)
        assert proc.returncode == 0 and "Traceback" not in output, output
        assert "does not answer" in output  # it did find the server down
        assert "classic+adam: test_acc" in output and "1 of 1 runs finished" in output
        parent, (classic,) = the_sweep(server.uri)
        assert parent.info.status == classic.info.status == "FINISHED"
        steps = [m.step for m in client_of(server.uri).get_metric_history(classic.info.run_id, "train_loss")]
        assert steps == [1, 2]  # nothing lost across the restart
    finally:
        server.stop()


def test_a_server_that_stays_down_stops_the_sweep_in_one_line_and_a_rerun_resumes(tmp_path):
    server = MlflowServer(tmp_path).start()
    command = sweep_command(server, tmp_path, "d2l", DOWN_PATIENCE_S)
    try:
        proc = start(*command)
        server.proc.wait()
        stopped = time.monotonic()
        output = proc.communicate(timeout=300)[0]
        ended = time.monotonic()
        assert proc.returncode == 1 and "Traceback" not in output, output
        (error,) = [line for line in output.splitlines() if line.startswith("error: ")]
        assert error.startswith(f"error: the MLflow tracking server at {server.uri} stopped answering and was not "
                                f"back within {DOWN_PATIENCE_S} s (mlflow.server_patience_s) during d2l")
        assert "rerun the same command to resume" in error
        # waited for it (from its first unanswered request, a moment before its process had exited), then gave up
        assert DOWN_PATIENCE_S - 2 <= ended - stopped < DOWN_PATIENCE_S + 30

        server.start()
        again = run(*command)  # the same sweep; its model has sent its one signal
        assert "Resuming sweep" in printed(again)
        parent, children = the_sweep(server.uri)
        assert sorted(r.info.status for r in children) == ["FINISHED", "KILLED"]
        (stale,) = [r for r in children if r.info.status == "KILLED"]
        assert f"process {proc.pid} on" in stale.data.tags["lenet.closed"]  # closed by the rerun, not left RUNNING
        assert parent.info.status == "FINISHED"
    finally:
        server.stop()
