"""Bad input a store reveals only when a sweep starts: one line, and nothing of the user's lost."""
import os
import subprocess
import sys
from pathlib import Path

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from experiments.job import run_job
from experiments.record.store import connect

from ..support.commands import run
from ..support.store import job_config


def test_a_deleted_experiment_is_one_line_saying_how_to_restore_it_and_its_runs_are_kept(runs_dir):
    cfg, choices = job_config(runs_dir)
    first = run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
                    runs_dir / "out", choices)
    uri = cfg.mlflow.tracking_uri
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("lenet-sweeps").experiment_id
    client.delete_experiment(experiment_id)  # as the MLflow UI's Delete does: to its trash, runs and all

    proc = run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", f"runs_dir={runs_dir}", check=False)
    assert proc.returncode == 1
    restore = f"MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id {experiment_id}"
    assert (proc.stdout + proc.stderr).splitlines() == [
        f"error: the MLflow experiment 'lenet-sweeps' at {uri} was deleted (its runs are kept until the store is "
        f"cleaned up); restore it with `{restore}`, or name another with mlflow.experiment=NAME"]
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    kept = client.search_runs([experiment_id], run_view_type=ViewType.ALL)
    assert [r.info.run_id for r in kept] == [first.run_id]

    subprocess.run(restore, shell=True, check=True, capture_output=True,
                   env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"  # the advice works
