"""The README's commands as a user runs them, against a real MLflow store: its sweep in a subprocess, exactly as
typed, the other commands in this process (sweeps that need no process of their own: tests/store/test_sweeps.py)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments import bench, export

from ..support.commands import run
from ..support.store import client_of, every_run

SWEEP = ["-m", "model=classic,d2l", "optim=sgd,adam"]
ARTIFACTS = {"config.yaml", "layers.txt", "history.csv", "learning_curves.png", "confusion_matrix.csv",
             "confusion_matrix.png", "predictions.csv", "model_best.pt"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The README's sweep on the embedded digits, cut to 1 epoch, writing under a new, empty runs/."""
    runs_dir = tmp_path_factory.mktemp("runs")
    proc = run("experiments.run", *SWEEP, "trainer.epochs=1", f"runs_dir={runs_dir}")
    return runs_dir, proc


def test_sweep_logs_one_parent_and_four_children_classic_sgd_diverging(sweep):
    runs_dir, proc = sweep
    runs = every_run(runs_dir)
    parents = [r for r in runs if r.data.tags.get("lenet.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("lenet.role") == "job"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {r.info.run_name for r in children} == {"classic+sgd", "classic+adam", "d2l+sgd", "d2l+adam"}
    status = {r.info.run_name: (r.info.status, r.data.tags.get("lenet.diverged")) for r in children}
    # LeNet-5's ReLUs at SGD's lr 0.9 blow up on the standardised digits: flagged, with what to try
    assert status.pop("classic+sgd") == ("FAILED", "1")
    assert set(status.values()) == {("FINISHED", None)}
    printed = proc.stdout + proc.stderr
    assert "3 of 4 runs finished, 1 diverged" in printed
    assert "Failed: classic+sgd, its run diverged at epoch 1; often too high an lr: try optim.lr=0.1" in printed
    assert "Warning" not in printed and "Traceback" not in printed  # what a newcomer reads first is clean


def test_each_child_has_params_metrics_and_artifacts(sweep):
    runs_dir, _ = sweep
    client, runs = client_of(runs_dir), every_run(runs_dir)
    for child in (r for r in runs if r.data.tags.get("lenet.role") == "job" and r.info.status == "FINISHED"):
        params = child.data.params
        assert params["parameter_count"] == "61706" and params["device_used"] == "cpu"
        assert params["input_size"] == {"classic": "32", "d2l": "28"}[params["model"]]
        assert params["model.activation"] in {"relu", "sigmoid"} and float(params["optim.lr"]) in {0.9, 1e-3}
        assert {"test_acc", "test_loss", "last_test_acc", "best_val_acc", "train_seconds"} <= set(child.data.metrics)
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert [m.step for m in history] == [1]
        assert child.data.tags["hydra.overrides"].startswith("model=")
        assert child.data.tags["lenet.sweep_id"]
        assert {a.path for a in client.list_artifacts(child.info.run_id)} == ARTIFACTS


def test_export_writes_four_rows_and_a_pivot(sweep, capsys):
    runs_dir, _ = sweep
    out = runs_dir / "exports"
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--out", str(out), "--format",
                        "csv,md"]) == 0
    printed = capsys.readouterr().out
    (folder,) = out.iterdir()  # one folder per sweep, named by its id
    table = pd.read_csv(folder / "runs.csv")
    assert len(table) == 4 and sorted(table["status"]) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    assert list(table[table["status"] == "FAILED"]["outcome"]) == ["diverged"]  # why it FAILED, beside the state
    assert set(table.columns) >= {"model", "model.activation", "model.pool", "optim", "optim.lr", "data", "seed",
                                  "trainer.epochs", "test_acc", "best_val_acc", "train_seconds", "samples_per_second",
                                  "status", "outcome", "run_id", "model_uri"}
    pivot = pd.read_csv(folder / "pivot.csv")
    assert list(pivot["model"]) == ["classic", "d2l"] and {"adam", "sgd"} <= set(pivot.columns)
    assert "| classic " in printed and "test_acc by model x optim" in printed


def test_export_formats_and_param_filters(sweep, capsys):
    runs_dir, _ = sweep
    out = runs_dir / "filtered"
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--out", str(out),
                        "--filter", "params.model = 'classic'", "--format", "csv,parquet,latex,md"]) == 0
    (folder,) = out.iterdir()
    table = pd.read_parquet(folder / "runs.parquet")
    assert set(table["model"]) == {"classic"} and len(table) == 2
    assert table["optim.lr"].dtype == "float64" and table["trainer.epochs"].dtype == "Int64"  # numbers, not text
    assert (folder / "runs.latex").read_text().startswith("\\begin{tabular}")
    assert "where params.model = 'classic'" in capsys.readouterr().out


def test_bench_times_the_sweep_by_phase_on_a_store_of_its_own_and_on_a_filled_one(tmp_path, idx_root, capsys):
    started = time.monotonic()
    assert bench.main(["--sweep", "model=d2l", "optim=sgd,adam", "trainer.epochs=1", "--prefill", "40", "data=mnist",
                       f"data.root={idx_root}", "data.download=false", f"runs_dir={tmp_path}"]) == 0
    took = time.monotonic() - started
    printed = capsys.readouterr().out
    tables = printed.split("store holding ")[1:]
    assert [table.split(" earlier runs")[0] for table in tables] == ["0", "40"]
    for table in tables:
        rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()
                if line.startswith("| ")}
        jobs = [name for name in rows if name in ("sgd", "adam", "d2l+sgd", "d2l+adam")]
        assert jobs == ["sgd", "adam"]  # named for the swept value
        training = float(rows["sgd"]) + float(rows["adam"])
        assert float(rows["training, 2 jobs"]) == pytest.approx(training, abs=0.011)
        total = float(rows["total, command start to exit"])
        assert 0 < training < total < took  # read off the sweep's own record, inside the bench's own wall time
        assert 0 < float(rows["start-up: imports, checks, store, first job's data"]) < total - training
        assert 0 < float(rows["per-job overhead, median"]) < total - training
    assert "per-job overhead, store of 40 runs / empty store: " in printed
    assert not (tmp_path / "mlflow.db").exists()  # its sweeps went to temporary stores, not the user's


@pytest.mark.parametrize("baseline, replica, recipe", [("d2l", "d2l train_ch6 replica", "model=d2l optim=sgd"),
                                                      ("classic", "classic loop replica", "model=classic optim=adam")])
def test_bench_times_the_replica_and_the_engine_from_the_same_weights(baseline, replica, recipe, idx_root,
                                                                        tmp_path, capsys):
    assert bench.main(["--baseline", baseline, "trainer.epochs=1", "--seeds", "2", "data=mnist",
                       f"data.root={idx_root}", "data.download=false", f"data.cache_dir={tmp_path}"]) == 0
    printed = capsys.readouterr().out
    assert recipe in printed.splitlines()[0]  # the replica's own recipe, for both loops
    rows = {line.split("|")[1].strip(): line.split("|") for line in printed.splitlines()
            if line.startswith(("| " + replica, "| engine"))}
    assert set(rows) == {replica, "engine (eager)"}
    assert all(row[4].strip() == "2" for row in rows.values())  # both loops ran both seeds
    ratios = printed.split("per seed, replica wall / engine wall: ")[1].split()
    assert len(ratios) == 2 and all(float(r.rstrip(",x")) > 0 for r in ratios)


def test_the_sweep_is_one_page_of_mlflow(sweep):
    runs_dir, proc = sweep
    client, runs = client_of(runs_dir), every_run(runs_dir)
    experiment = client.get_experiment_by_name("lenet-sweeps")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on its runs
    assert "parent run, named sweep and its overrides," in experiment.tags["mlflow.note.content"]
    (parent,) = [r for r in runs if r.data.tags.get("lenet.role") == "sweep"]
    description = parent.data.tags["mlflow.note.content"]
    assert description.startswith("#### sweep ") and "\n\nBest recipe: " in description[:300]  # the answer first
    assert "Recipes (every swept value but the seed" in description
    metrics = parent.data.metrics
    assert metrics["runs_total"] == 4 == metrics["runs_trained"] + metrics["runs_failed"] + \
        metrics["runs_interrupted"] + metrics["runs_running"]  # the counts add up
    assert metrics["runs_failed"] >= 1
    best = parent.data.tags["lenet.best_cell"]
    (best_run,) = [r for r in runs if r.data.params.get("cell") == best]
    assert metrics["best_cell_test_acc"] == best_run.data.metrics["test_acc"]
    assert metrics[f"cell/{best.replace('+', '-')}/test_acc_mean"] == best_run.data.metrics["test_acc"]
    assert parent.info.run_name.endswith(" model x optim") and "runs_dir" not in parent.info.run_name
    printed = proc.stdout + proc.stderr
    experiments = f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
    assert (f"See it in MLflow: mlflow ui --backend-store-uri sqlite:///{runs_dir}/mlflow.db --port 5000, then open "
            f"{experiments}?workflowType=machine_learning&viewStateShareKey=") in printed
    assert (f"(the sweep by recipe; its summary: {experiments}/{parent.info.run_id}?workflowType=machine_learning; "
            f"if MLflow shows GenAI pages, click \"Model training\" at the top once)") in printed


def test_each_child_charts_well_and_carries_an_mlflow_model_and_its_dataset(sweep):
    import mlflow.pytorch
    import torch

    runs_dir, _ = sweep
    client, runs = client_of(runs_dir), every_run(runs_dir)
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir}/mlflow.db")  # where runs:/ URIs are looked up, as a user sets it
    children = [r for r in runs if r.data.tags.get("lenet.role") == "job" and r.info.status == "FINISHED"]
    assert len(children) == 3
    for child in children:
        run_id, params = child.info.run_id, child.data.params
        assert [m.step for m in client.get_metric_history(run_id, "test_acc")] == [0]  # one value per run: a bar
        assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [1]  # per epoch: a curve
        assert all(len(repr(v).split(".")[-1]) <= 6 for v in child.data.metrics.values())  # 0.924, not 0.92400002
        assert not {"runs_dir", "data.root", "data.cache_dir", "mlflow.tracking_uri"} & set(params)  # no paths
        assert child.data.tags["lenet.config.runs_dir"] == str(runs_dir)  # kept, as a tag
        assert child.data.tags["mlflow.source.name"] == "python -m experiments.run" and child.data.tags["mlflow.user"]
        (used,) = child.inputs.dataset_inputs
        assert used.dataset.name == "mnist5k" and len(used.dataset.digest) == 16
        assert json.loads(used.dataset.profile) == {"train": 3600, "validation": 400, "test": 1000}
        assert child.data.tags["lenet.model"] == f"runs:/{run_id}/{child.info.run_name.replace('+', '-')}-seed0"
        model = mlflow.pytorch.load_model(child.data.tags["lenet.model"])  # its name says which recipe and seed
        side = int(params["input_size"])
        assert model(torch.zeros(5, 1, side, side)).shape == (5, 10)
        info = mlflow.models.get_model_info(child.data.tags["lenet.model"])  # logged without MLflow's reload check
        assert "pytorch" in info.flavors and info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"][-1] == side
        example = mlflow.models.Model.load(child.data.tags["lenet.model"]).load_input_example()
        assert example.shape == (2, 1, side, side)  # its input example kept
    assert len({json.loads(c.inputs.dataset_inputs[0].dataset.source)["dataset"] for c in children}) == 1


def printed_model_uri(proc, name: str) -> str:
    """The model URI a job's last line prints: what the README tells a user to type."""
    (line,) = [line for line in (proc.stdout + proc.stderr).splitlines() if f" - {name}: test_acc " in line]
    return line.split("; model ")[1].strip()


def test_mlflow_models_predict_serves_a_logged_model_from_the_printed_uri(sweep, tmp_path):
    import mlflow.pytorch
    import torch

    runs_dir, proc = sweep
    uri = printed_model_uri(proc, "d2l+adam")
    (child,) = [r for r in every_run(runs_dir) if r.info.run_name == "d2l+adam"]
    assert uri == f"runs:/{child.info.run_id}/d2l-adam-seed0" == child.data.tags["lenet.model"]
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir}/mlflow.db")  # as the README says: the store the runs are in
    assert mlflow.pytorch.load_model(uri)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"inputs": [[[[0.0] * 28] * 28]]}))
    command = Path(sys.executable).with_name("mlflow")
    proc = subprocess.run([str(command), "models", "predict", "-m", uri, "-i",
                           str(batch), "-t", "json", "--env-manager", "local"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{runs_dir}/mlflow.db"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (scores,) = json.loads(proc.stdout.strip().splitlines()[-1])["predictions"]
    assert len(scores) == 10
