"""The project's commands run as a user runs them, in a subprocess, and the runs they leave in a store."""
import os
import subprocess
import sys

from mlflow.tracking import MlflowClient

from experiments.config import PROJECT_ROOT

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def runs(runs_dir, role="job"):
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    experiment = client.get_experiment_by_name("lenet-sweeps")
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    return client, [r for r in found if r.data.tags.get("lenet.role") == role]
