"""A tracking server that goes away: a restart is waited out; one that stays down stops the sweep in one line.

Each job's model stops the server as its second epoch starts (tests.support.faults, reading the server's
pid file): the first time, the test starts it again at once (a restart); the second time it stays down.
"""
import threading
import time

from ..support.commands import printed, run, start
from ..support.servers import MlflowServer
from ..support.store import client_of, the_sweep

PATIENCE_S = 20  # enough for this machine to restart `mlflow server`; the default is 120


def test_a_server_that_restarts_is_waited_for_and_one_that_stays_down_stops_the_sweep(tmp_path):
    server = MlflowServer(tmp_path).start()
    command = ["experiments.run", "-m", "model=classic,d2l", "trainer.epochs=2", "trainer.progress=lines",
               f"mlflow.tracking_uri={server.uri}", f"mlflow.server_patience_s={PATIENCE_S}", "mlflow.log_model=false",
               f"runs_dir={tmp_path / 'runs'}", "model._target_=tests.support.faults.signalling_lenet",
               "+model.signal_name=SIGTERM", f"+model.to=pidfile:{server.pid_file}", f"+model.tally={tmp_path}/stops",
               "+model.times=2"]
    stops = []

    def restart_once():  # what an upgrade or a crash-looping service manager does, the first time only
        server.proc.wait()
        stops.append(time.monotonic())
        server.start()
        server.proc.wait()
        stops.append(time.monotonic())

    watcher = threading.Thread(target=restart_once, daemon=True)
    watcher.start()
    try:
        proc = start(*command)
        output = proc.communicate(timeout=300)[0]
        ended = time.monotonic()
        assert proc.returncode == 1 and "Traceback" not in output, output
        assert "classic: test_acc" in output  # the restart was waited out
        (error,) = [line for line in output.splitlines() if line.startswith("error: ")]
        assert error.startswith(f"error: the MLflow tracking server at {server.uri} stopped answering and was not "
                                f"back within {PATIENCE_S} s (mlflow.server_patience_s) during d2l")
        assert "rerun the same command to resume" in error
        # waited for it (from its first unanswered request, a moment before its process had exited), then gave up
        assert len(stops) == 2 and PATIENCE_S - 5 <= ended - stops[1] < PATIENCE_S + 30

        server.start()
        again = run(*command)  # the same sweep; its models have sent their two signals
        assert "Resuming sweep" in printed(again)
        parent, children = the_sweep(server.uri)
        status = sorted((r.data.params["model"], r.info.status) for r in children)
        assert status == [("classic", "FINISHED"), ("d2l", "FINISHED"), ("d2l", "KILLED")]
        (stale,) = [r for r in children if r.info.status == "KILLED"]
        assert f"process {proc.pid} on" in stale.data.tags["lenet.closed"]  # closed by the rerun, not left RUNNING
        assert parent.info.status == "FINISHED"
        classic = [r for r in children if r.data.params["model"] == "classic"][0]
        steps = [m.step for m in client_of(server.uri).get_metric_history(classic.info.run_id, "train_loss")]
        assert steps == [1, 2]  # nothing lost across the restart
    finally:
        server.stop()
