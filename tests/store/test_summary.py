"""The summary and the export never crash on what a sweep can produce (runs made in a real store)."""
import json
import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from experiments import export

STATUS = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED", "DIVERGED": "FAILED"}


def make_sweep(runs_dir, swept, runs):
    """A parent run and its job runs, as a sweep leaves them: runs are (params, status, test_acc)."""
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    experiment_id = client.create_experiment("lenet-sweeps", artifact_location=(runs_dir / "art").as_uri())
    parent = client.create_run(experiment_id, run_name="sweep", tags={
        "lenet.role": "sweep", "lenet.sweep_id": "s1", "hydra.overrides": "x", "lenet.swept": json.dumps(swept)})
    for i, (params, status, acc) in enumerate(runs):
        run = client.create_run(experiment_id, run_name=f"job{i}", tags={
            "lenet.role": "job", "mlflow.parentRunId": parent.info.run_id, "lenet.config_hash": f"h{i}",
            "hydra.job_num": str(i), **({"lenet.diverged": "2"} if status == "DIVERGED" else {})})
        full = {"model": "classic", "optim": "adam", "seed": 0, "model.activation": "relu", "model.pool": "max",
                "optim.lr": 0.001, "data": "mnist5k", "trainer.epochs": 2, **params}
        for key, value in full.items():
            client.log_param(run.info.run_id, key, value)
        epochs = 2 if status in ("FINISHED", "DIVERGED") else 1
        for epoch in range(1, epochs + 1):
            loss = math.nan if status == "DIVERGED" and epoch == 2 else 1.0 / epoch
            client.log_metric(run.info.run_id, "train_loss", loss, step=epoch)
            client.log_metric(run.info.run_id, "val_acc", 0.5 * epoch, step=epoch)
        if status == "FINISHED":
            for key, value in {"test_acc": acc, "best_val_acc": acc, "train_seconds": 1.0}.items():
                client.log_metric(run.info.run_id, key, value, step=2)
        client.set_terminated(run.info.run_id, STATUS[status])
    client.set_terminated(parent.info.run_id, "FAILED")
    return client


def run_export(runs_dir, capsys):
    code = export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--out", str(runs_dir / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    return captured.out, pd.read_csv(runs_dir / "out" / "s1" / "runs.csv")


def grid(statuses, seeds=(0,)):
    cells = [("classic", "adam"), ("classic", "sgd"), ("d2l", "adam"), ("d2l", "sgd")]
    runs = []
    for (model, optim), status in zip(cells, statuses):
        for seed in seeds:
            runs.append(({"model": model, "optim": optim, "seed": seed}, status, 0.9 + 0.01 * seed))
    return runs


@pytest.mark.parametrize("statuses", [
    ["FAILED", "DIVERGED", "KILLED", "DIVERGED"],  # nothing finished
    ["FINISHED", "DIVERGED", "FINISHED", "KILLED"],  # cells with no finished run beside finished ones
])
def test_a_factorial_where_cells_have_no_finished_run(runs_dir, capsys, statuses):
    make_sweep(runs_dir, ["model", "optim", "seed"], grid(statuses, seeds=(0, 1, 2)))
    printed, table = run_export(runs_dir, capsys)
    assert len(table) == 12 and list(table["status"][::3]) == statuses
    assert "DIVERGED" in printed


@pytest.mark.parametrize("statuses", [["FINISHED"] * 3, ["DIVERGED"] * 3, ["KILLED", "FAILED", "DIVERGED"],
                                      ["FINISHED", "DIVERGED", "KILLED"]])
def test_a_sweep_of_seeds_only(runs_dir, capsys, statuses):
    make_sweep(runs_dir, ["seed"], [({"seed": s}, status, 0.9 + 0.01 * s) for s, status in enumerate(statuses)])
    printed, table = run_export(runs_dir, capsys)
    assert list(table["status"]) == statuses


def test_a_sweep_of_one_run(runs_dir, capsys):
    make_sweep(runs_dir, ["model"], [({}, "FINISHED", 0.93)])
    _, table = run_export(runs_dir, capsys)
    assert list(table["test_acc"]) == [0.93]
