"""Jobs composed as the run command composes them, and the runs a store holds."""
from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments.config import compose_with_choices

# Tests that do not read a run's MLflow model leave it out: it is 0.8 s of each job. They train on 4 batches: the
# wiring is what they check, not the learning.
QUICK = ["trainer.epochs=1", "trainer.limit_batches=4", "trainer.progress=lines", "mlflow.log_model=false"]


def client_of(where: Path | str) -> MlflowClient:
    """A client for a runs_dir's store, or for a tracking URI."""
    return MlflowClient(where if isinstance(where, str) else f"sqlite:///{where}/mlflow.db")


def runs_in(where: Path | str, role: str = "job") -> list:
    """The runs of one role (job or sweep) in the experiment lenet-sweeps, oldest first."""
    client = client_of(where)
    experiment = client.get_experiment_by_name("lenet-sweeps")
    if experiment is None:
        return []
    found = client.search_runs([experiment.experiment_id], filter_string=f"tags.`lenet.role` = '{role}'",
                               order_by=["attributes.start_time ASC"], max_results=1000)
    return found


def the_sweep(where: Path | str) -> tuple:
    """The one sweep of the store: its parent run and its children (checked to be exactly its own)."""
    (parent,) = runs_in(where, "sweep")
    children = runs_in(where)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    return parent, children


def job_config(runs_dir: Path, *overrides: str):
    """(cfg, group choices) for one job writing under runs_dir: 1 epoch, plain progress lines, no MLflow model."""
    return compose_with_choices([f"runs_dir={runs_dir}", *QUICK, *overrides])


def every_run(where: Path | str) -> list:
    """Every run of the experiment lenet-sweeps, parents and jobs."""
    return runs_in(where, "sweep") + runs_in(where, "job")
