"""Real sweeps that need no process of their own, run by the run command in this process: what they leave in the
store and what they print. They train real networks (seconds each), so they are marked slow; what needs a process
(signals, launchers' workers, exit codes, the install) stays in tests/commands."""
import shutil

import pandas as pd
import pytest

from experiments import export
from experiments import run as run_command
from experiments.job import run_job
from experiments.record.store import connect

from ..support.servers import MlflowServer
from ..support.store import QUICK, client_of, every_run, job_config, runs_in, the_sweep

pytestmark = pytest.mark.slow


def swept(capfd, *argv: str) -> tuple[int, str]:
    """The run command's exit code and everything it printed, as `python -m experiments.run ARGV` would."""
    code = run_command.command(list(argv))
    out, err = capfd.readouterr()
    return code, out + err


def test_a_failing_job_ends_failed_and_the_others_still_run(runs_dir, capfd):
    code, printed = swept(capfd, "-m", "model=classic", "model._target_=tests.support.faults.exploding_lenet,"
                          "lenet.model.lenet_classic", *QUICK, f"runs_dir={runs_dir}")
    assert code == 1
    assert "model._target_=tests.support.faults.exploding_lenet: injected fault in forward" in printed
    assert "Traceback" not in printed  # it is kept in the run's error.txt instead
    runs = every_run(runs_dir)
    by_status = {r.info.status: r for r in runs if r.data.tags.get("lenet.role") == "job"}
    assert set(by_status) == {"FAILED", "FINISHED"}
    assert by_status["FAILED"].data.tags["error.message"] == "injected fault in forward"
    assert by_status["FAILED"].data.tags["error.type"] == "RuntimeError"
    (parent,) = [r for r in runs if r.data.tags.get("lenet.role") == "sweep"]
    assert parent.info.status == "FAILED"


def test_divergence_stops_the_run_marks_it_and_the_sweep_goes_on(runs_dir, capfd):
    # d2l's LeNet with GELU at the book's SGD lr 0.9, batch 256, pixels in [0, 1]: nan in epoch 2 or 3 on these
    # digits (which one depends on torch's thread count: 2 threads, epoch 2; 1 thread, epoch 3).
    code, _ = swept(capfd, "-m", "model=d2l", "model.activation=gelu,sigmoid", "optim=sgd", "trainer.epochs=4",
                    "data.normalize=none", "trainer.batch_size=256", "mlflow.log_model=false",
                    f"runs_dir={runs_dir}")
    assert code == 0  # a diverged run is an outcome of the sweep, not a failure of the command
    client, jobs = client_of(runs_dir), runs_in(runs_dir)
    by_activation = {r.data.params["model.activation"]: r for r in jobs}
    gelu, sigmoid = by_activation["gelu"], by_activation["sigmoid"]
    epoch = int(gelu.data.tags["lenet.diverged"])
    assert epoch in (2, 3) and gelu.info.status == "FAILED"  # stopped there, not trained on to epoch 4
    assert f"nan at epoch {epoch}" in gelu.data.tags["error.message"]
    steps = [m.step for m in client.get_metric_history(gelu.info.run_id, "train_loss")]
    assert steps == list(range(1, epoch + 1))  # every epoch it trained is kept
    assert "test_acc" not in gelu.data.metrics
    assert gelu.data.metrics["train_seconds"] > 0  # the time it trained still counts (bench --sweep reads it)
    assert sigmoid.info.status == "FINISHED"
    assert runs_in(runs_dir, "sweep")[0].info.status == "FINISHED"
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--out", str(runs_dir / "x")]) == 0
    table = pd.read_csv(next((runs_dir / "x").glob("*/runs.csv")))
    row = table.set_index("model.activation").loc["gelu"]
    assert (row["status"], row["outcome"]) == ("FAILED", "diverged") and pd.isna(row["test_acc"])


def test_a_seeded_sweep_writes_every_table_and_plot_and_logs_them_on_the_parent(runs_dir, capfd):
    code, printed = swept(capfd, "-m", "model=classic,d2l", "seed=0,1", "trainer.epochs=2",
                          "mlflow.log_model=false", f"runs_dir={runs_dir}")  # d2l's sigmoid net needs both epochs
    assert code == 0
    (folder,) = (runs_dir / "exports").iterdir()
    assert f"Every comparison, the factorial model and the runs: {folder / 'summary.md'}" in " ".join(
        line.strip() for line in printed.splitlines())  # the terminal says where the full analysis is
    full = (folder / "summary.md").read_text()
    assert "Recipes (every swept value but the seed" in full
    assert "- the trained networks classic (seed 0) and d2l (seed 0) " in full  # the comparison, as a sentence
    client, runs = client_of(runs_dir), every_run(runs_dir)
    (parent,) = [r for r in runs if r.data.tags.get("lenet.role") == "sweep"]
    expected = {"runs.csv", "runs.md", "pivot.csv", "cells.csv", "cells.md", "comparisons.csv", "comparisons.md",
                "effects.csv", "curves_val_acc.png", "curves_train_loss.png", "test_acc_by_cell.png", "summary.md"}
    assert expected <= {p.name for p in folder.iterdir()}
    assert "anova.csv" not in {p.name for p in folder.iterdir()}  # 2 seeds a cell: no test of the factors to tabulate
    assert expected <= {a.path.removeprefix("summary/") for a in client.list_artifacts(parent.info.run_id, "summary")}
    cells = pd.read_csv(folder / "cells.csv")
    assert list(cells["n"]) == [2, 2] and list(cells["model"]) == ["classic", "d2l"]
    comparison = pd.read_csv(folder / "comparisons.csv").set_index("kind")
    # two seeds are too few for a claim about the recipes: the networks of seed 0 are compared on their test images
    assert comparison.loc["accuracy", "test"] == "none" and comparison.loc["networks", "test"] == "mcnemar"


def test_a_moved_runs_folder_keeps_its_artifacts_and_logs_new_ones_where_it_is(tmp_path, idx_root, capfd):
    first = tmp_path / "first"
    code, _ = swept(capfd, "data=mnist", f"data.root={idx_root}", "data.download=false", *QUICK, f"runs_dir={first}")
    assert code == 0
    (done,) = runs_in(first)
    # named by what it computes, not where its files are
    assert done.info.run_name == "data=mnist,trainer.epochs=1,trainer.limit_batches=4"
    moved = tmp_path / "moved"
    shutil.move(first, moved)  # the user moves the project, or copies runs/ to another disk
    cfg, choices = job_config(moved, "data=mnist", f"data.root={idx_root}", "data.download=false", "seed=1")
    tracking = connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    new = run_job(cfg, tracking, "new", {"lenet.role": "job"}, tmp_path / "out2", choices)
    for run_id in (done.info.run_id, new.run_id):
        found = tracking.client.get_run(run_id)
        assert found.info.artifact_uri.startswith((moved / "mlartifacts").as_uri())
        local = tracking.client.download_artifacts(run_id, "predictions.csv", str(tmp_path))
        assert len(pd.read_csv(local)) == 100


def test_a_relative_runs_dir_is_taken_from_the_working_directory(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    code, printed = swept(capfd, "-m", "model=d2l", *QUICK, "runs_dir=myruns")
    assert code == 0
    runs_dir = tmp_path / "myruns"
    client, found = client_of(runs_dir), every_run(runs_dir)
    (job,) = [r for r in found if r.data.tags["lenet.role"] == "job"]
    assert job.info.status == "FINISHED"
    assert job.info.artifact_uri.startswith((runs_dir / "mlartifacts").as_uri())
    assert "model_best.pt" in {a.path for a in client.list_artifacts(job.info.run_id)}
    assert f"mlflow ui --backend-store-uri sqlite:///{runs_dir}/mlflow.db " in printed  # from any directory


def test_optuna_search_tracks_each_trial_under_the_study(runs_dir, capfd):
    code, printed = swept(capfd, "-m", "hydra/sweeper=search", "hydra.sweeper.n_trials=3", *QUICK,
                          f"runs_dir={runs_dir}")
    assert code == 0 and "Best parameters" in printed
    parent, trials = the_sweep(runs_dir)
    assert len(trials) == 3 and {r.info.status for r in trials} == {"FINISHED"}
    for trial in trials:
        assert 1e-4 <= float(trial.data.params["optim.lr"]) <= 1.0
        assert trial.data.params["trainer.batch_size"] in {"64", "128", "256", "512"}
        assert trial.info.run_name.startswith("optim.lr=") and "trainer.epochs" not in trial.info.run_name
        assert "best_val_acc" in trial.data.metrics  # the objective the sweeper maximised
    assert parent.info.status == "FINISHED"


@pytest.fixture
def tracking_server(tmp_path):
    """A real `mlflow server` on a free loopback port: sqlite backend, artifacts served by the server."""
    server = MlflowServer(tmp_path).start()
    yield server.uri, server.artifacts
    server.stop()


def test_sweep_logs_to_a_tracking_server_and_export_reads_it_back(tracking_server, tmp_path, capfd):
    uri, artifact_store = tracking_server
    code, _ = swept(capfd, "-m", "model=classic,d2l", *QUICK, f"mlflow.tracking_uri={uri}",
                    f"runs_dir={tmp_path / 'runs'}")
    assert code == 0
    client, (_, children) = client_of(uri), the_sweep(uri)
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    for child in children:
        assert "model_best.pt" in {a.path for a in client.list_artifacts(child.info.run_id)}
    assert list(artifact_store.rglob("model_best.pt"))  # uploaded through the server, kept where it keeps them
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # nothing went to the local store
    assert export.main(["--tracking-uri", uri, "--out", str(tmp_path / "exports")]) == 0
    assert capfd.readouterr().out.count("| FINISHED |") == 2
