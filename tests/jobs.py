"""Jobs composed as the run command composes them, shrunk for tests, and the runs they leave in a store."""
from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments.config import compose_with_choices


def job_config(runs_dir: Path, *overrides: str):
    """(cfg, group choices) for one job writing under runs_dir: 1 epoch, plain progress lines."""
    return compose_with_choices([f"runs_dir={runs_dir}", "trainer.epochs=1", "trainer.progress=lines", *overrides])


def job_runs(runs_dir: Path, role: str = "job") -> list:
    """The runs of one role (job or sweep) in runs_dir's store."""
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    experiment = client.get_experiment_by_name("lenet-sweeps")
    if experiment is None:
        return []
    found = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in found if r.data.tags.get("lenet.role") == role]
