"""A tracking server that goes away: a restart is waited out; one that stays down stops the sweep in one line."""
import os
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from experiments.config import PROJECT_ROOT

from .servers import MlflowServer
from .test_launchers import sweep_runs


@pytest.mark.slow
def test_a_server_that_restarts_is_waited_for_and_one_that_stays_down_stops_the_sweep(tmp_path):
    server = MlflowServer(tmp_path).start()
    command = [sys.executable, "-m", "experiments.run", "-m", "model=classic,d2l", "trainer.epochs=4",
               "trainer.progress=lines", f"mlflow.tracking_uri={server.uri}", "mlflow.server_patience_s=30",
               f"runs_dir={tmp_path / 'runs'}"]
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    printed, gone_at = [], None
    try:
        for line in proc.stdout:
            printed.append(line)
            if "model=classic epoch 2/4" in line:  # a restart, as an upgrade or a crash-loop would do
                server.stop()
                time.sleep(2)
                server.start()
            if "model=d2l epoch 2/4" in line:  # down for good
                gone_at = time.monotonic()
                server.stop()
        proc.wait(timeout=120)
        waited = time.monotonic() - gone_at
        output = "".join(printed)
        assert proc.returncode == 1 and "Traceback" not in output, output
        assert "model=classic: test_acc" in output  # the restart was waited out
        (error,) = [line for line in printed if line.startswith("error: ")]
        assert error.startswith(f"error: the MLflow tracking server at {server.uri} stopped answering and was not "
                                f"back within 30 s (mlflow.server_patience_s) during model=d2l")
        assert "rerun the same command to resume" in error
        assert 30 <= waited < 70

        server.start()
        again = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        _, parent, children = sweep_runs(server.uri)
        status = sorted((r.data.params["model"], r.info.status) for r in children)
        assert status == [("classic", "FINISHED"), ("d2l", "FINISHED"), ("d2l", "KILLED")]
        (stale,) = [r for r in children if r.info.status == "KILLED"]
        assert f"process {proc.pid} on" in stale.data.tags["lenet.closed"]  # closed by the rerun, not left RUNNING
        assert parent.info.status == "FINISHED"
        classic = [r for r in children if r.data.params["model"] == "classic"][0]
        steps = [m.step for m in MlflowClient(server.uri).get_metric_history(classic.info.run_id, "train_loss")]
        assert steps == [1, 2, 3, 4]  # nothing lost across the restart
    finally:
        proc.kill()
        server.stop()
