"""The summary and the export of what a sweep can leave in a real store: failed and empty cells, seeds only,
one run, a run still running; each summary checked for what it says, not only that it was written."""
import json
import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from experiments import export
from experiments.record.liveness import me

STATUS = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED", "DIVERGED": "FAILED", "RUNNING": "RUNNING"}


def make_sweep(runs_dir, swept, runs, parent_status="FAILED"):
    """A parent run and its job runs, as a sweep leaves them: runs are (params, status, test_acc)."""
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    experiment_id = client.create_experiment("lenet-sweeps", artifact_location=(runs_dir / "art").as_uri())
    parent = client.create_run(experiment_id, run_name="sweep", tags={
        "lenet.role": "sweep", "lenet.sweep_id": "s1", "hydra.overrides": "x", "lenet.swept": json.dumps(swept),
        "lenet.owner": me()})
    for i, (params, status, acc) in enumerate(runs):
        run = client.create_run(experiment_id, run_name=f"job{i}", tags={
            "lenet.role": "job", "mlflow.parentRunId": parent.info.run_id, "lenet.config_hash": f"h{i}",
            "hydra.job_num": str(i), **({"lenet.diverged": "2"} if status == "DIVERGED" else {})})
        full = {"model": "classic", "optim": "adam", "seed": 0, "model.activation": "relu", "model.pool": "max",
                "optim.lr": 0.001, "data": "mnist5k", "trainer.epochs": 2, "test_size": 100, **params}
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
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, STATUS[status])
    if parent_status != "RUNNING":
        client.set_terminated(parent.info.run_id, parent_status)
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


@pytest.mark.parametrize("statuses, best, counts", [
    (["FAILED", "DIVERGED", "KILLED", "DIVERGED"], None, ["3 of 3", "3 of 3", "0 of 0", "3 of 3"]),  # nothing trained
    (["FINISHED", "DIVERGED", "FINISHED", "KILLED"], "classic+adam", ["0 of 3", "3 of 3", "0 of 3", "0 of 0"]),
])
def test_a_factorial_where_cells_have_no_run_that_trained(runs_dir, capsys, statuses, best, counts):
    make_sweep(runs_dir, ["model", "optim", "seed"], grid(statuses, seeds=(0, 1, 2)))
    printed, table = run_export(runs_dir, capsys)
    assert len(table) == 12 and list(table["status"][::3]) == [STATUS[s] for s in statuses]  # MLflow's own states
    cells = pd.read_csv(runs_dir / "out" / "s1" / "cells.csv").set_index("cell")
    assert [f"{int(c['failed_runs'])} of {int(c['counted'])}" for _, c in cells.iterrows()] == counts
    assert int(cells["interrupted"].sum()) == 3 * statuses.count("KILLED")  # a Ctrl-C: shown, in no rate
    if best is None:
        assert "No recipe has a run that trained: every run failed" in printed and "Best recipe" not in printed
        assert "no run trained: nothing to model" in printed
    else:
        assert printed.count(f"Best recipe: {best},") == 1
        assert "not estimable (no run that trained: classic+sgd" in printed  # never filled in by the model


def test_a_seeds_only_sweep_says_what_each_run_came_to(runs_dir, capsys):
    statuses = ["FINISHED", "DIVERGED", "KILLED"]
    make_sweep(runs_dir, ["seed"], [({"seed": s}, status, 0.9 + 0.01 * s) for s, status in enumerate(statuses)])
    printed, table = run_export(runs_dir, capsys)
    assert list(table["status"]) == ["FINISHED", "FAILED", "KILLED"]  # MLflow's states; the outcome says why
    assert list(table["outcome"]) == ["ok", "diverged", "interrupted"]
    row = "| classic+adam |      3 |         1 | 1 of 2 (1 diverged; 95% CI 0.01 to 0.99); not counted: 1 interrupted |"
    assert row in printed  # one recipe, named as its jobs are


def test_a_sweep_of_one_run_shows_its_test_set_interval(runs_dir, capsys):
    make_sweep(runs_dir, ["model"], [({}, "FINISHED", 0.93)])
    printed, table = run_export(runs_dir, capsys)
    assert list(table["test_acc"]) == [0.93]
    assert "0.9300 (one run; 95% Wilson, 100 test images: " in printed


def test_an_export_while_the_sweep_runs_shows_running_runs_and_leaves_its_parent_alone(runs_dir, capsys):
    client = make_sweep(runs_dir, ["model", "seed"], [({"model": "classic", "seed": 0}, "FINISHED", 0.93),
                                                     ({"model": "classic", "seed": 1}, "RUNNING", math.nan)],
                        parent_status="RUNNING")
    printed, table = run_export(runs_dir, capsys)
    assert list(table["outcome"]) == ["ok", "running"]
    assert "This sweep is still running" in printed and "1 run is still running" in printed
    assert "1 of 1 failed" not in printed and "0 of 1" in printed  # the running run is in no rate
    (parent,) = [r for r in client.search_runs(["1"]) if r.data.tags.get("lenet.role") == "sweep"]
    assert parent.info.status == "RUNNING" and "mlflow.note.content" not in parent.data.tags  # left alone
    assert not client.list_artifacts(parent.info.run_id)


def test_a_recipe_the_sweep_never_ran_is_named_as_not_run(runs_dir, capsys):
    runs = [r for r in grid(["FINISHED"] * 4, seeds=(0, 1, 2)) if (r[0]["model"], r[0]["optim"]) != ("d2l", "sgd")]
    make_sweep(runs_dir, ["model", "optim", "seed"], runs)  # an irregular sweep: three recipes of the 2x2 grid
    printed, _ = run_export(runs_dir, capsys)
    assert "not estimable (not run: d2l+sgd)" in printed and "no run that trained" not in printed


# What the summary's phase imports, in a process of its own: after MLflow (which itself imports scipy's base and
# scipy.sparse), the export of a sweep imports scipy's tests and statsmodels only where it makes a test.
EXPORT = """
from experiments import export
assert export.main(["--tracking-uri", sys.argv[1], "--out", sys.argv[2], "--no-attach"]) == 0
"""


@pytest.mark.slow  # a fresh process of its own: seconds of imports
@pytest.mark.parametrize("seeds, imports", [(1, False), (3, True)])
def test_a_one_seed_summary_imports_neither_scipy_stats_nor_statsmodels(runs_dir, seeds, imports):
    from ..support.commands import imported_by
    from ..support.record import Record

    record = Record(runs_dir)
    for seed in range(seeds):
        for model, optim, acc in (("classic", "adam", 0.97 + seed / 1000), ("d2l", "adam", 0.8 + seed / 100),
                                  ("classic", "sgd", 0.1), ("d2l", "sgd", 0.6 + seed / 50)):
            record.job(model, optim, seed=seed, acc=acc)
    record.end()
    imported = imported_by(EXPORT, ("scipy.stats", "scipy.special", "statsmodels"), f"sqlite:///{runs_dir}/mlflow.db",
                           str(runs_dir / "out"), setup="import mlflow")
    # 1 seed: no t test, no factorial F; 3 seeds: the t tests import scipy (the check sees an import when there is one)
    assert bool(imported) == imports, imported[:20]
