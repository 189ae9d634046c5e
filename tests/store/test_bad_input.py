"""Bad input against a store that holds runs: one line, exit 2, and the store left byte for byte as it was; and
bad input a store reveals only when a sweep starts: one line, and nothing of the user's lost."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from experiments import export
from experiments import run as run_command
from experiments.job import run_job
from experiments.record.runs import tracked_run
from experiments.record.store import connect

from ..support.store import job_config, runs_in


def test_bad_input_exits_2_and_leaves_the_store_untouched(runs_dir, capsys):
    cfg, choices = job_config(runs_dir)
    run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
            runs_dir / "out", choices)
    store = runs_dir / "mlflow.db"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    assert run_command.command(["-m", "model=classic,d2l", "optim.lr=-1", f"runs_dir={runs_dir}"]) == 2
    assert capsys.readouterr().err.strip() == "error: optim.lr -1 must be a finite number > 0"
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert len(runs_in(runs_dir)) == 1 and not runs_in(runs_dir, "sweep")
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--experiment", "lenet-sweep"]) == 2
    assert capsys.readouterr().err.strip() == f"error: no experiment 'lenet-sweep' at sqlite:///{store}; " \
                                              "experiments there: Default, lenet-sweeps"
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before  # the typo made no experiment
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--filter", "params.model == classic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: bad --filter 'params.model == classic': Parameter value is either not quoted")


def test_export_to_a_place_it_cannot_write_is_one_line(runs_dir, capsys):
    cfg, choices = job_config(runs_dir)
    run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
            runs_dir / "out", choices)
    blocked = runs_dir / "a-file"
    blocked.write_text("")
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--filter", "params.model = 'classic'",
                        "--out", str(blocked / "exports")]) == 2
    assert capsys.readouterr().err == f"error: --out {blocked}/exports cannot be created: {blocked} is a file, not " \
                                      "a directory\n"


def test_export_of_an_unknown_sweep_names_the_sweeps_there(runs_dir, capsys):
    tracking = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    for sweep_id in ("2026-11-20_10-00-00-aaaaaa", "2026-11-21_10-00-00-bbbbbb"):
        with tracked_run(tracking, f"sweep {sweep_id}", {"lenet.role": "sweep", "lenet.sweep_id": sweep_id}, runs_dir):
            pass
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--sweep", "2026-11-21",
                        "--out", str(runs_dir / "out")]) == 2
    assert capsys.readouterr().err == "error: no sweep '2026-11-21' in this experiment; its newest sweeps: " \
                                      "2026-11-21_10-00-00-bbbbbb, 2026-11-20_10-00-00-aaaaaa (or --sweep latest)\n"
    assert not (runs_dir / "out").exists()


@pytest.mark.slow  # the advice is checked by running it: a process of its own
def test_a_deleted_experiment_is_one_line_saying_how_to_restore_it_and_its_runs_are_kept(runs_dir, capsys):
    cfg, choices = job_config(runs_dir)
    first = run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
                    runs_dir / "out", choices)
    uri = cfg.mlflow.tracking_uri
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("lenet-sweeps").experiment_id
    client.delete_experiment(experiment_id)  # as the MLflow UI's Delete does: to its trash, runs and all
    capsys.readouterr()

    assert run_command.command(["-m", "model=classic,d2l", "trainer.epochs=1", f"runs_dir={runs_dir}"]) == 1
    restore = f"MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id {experiment_id}"
    printed = capsys.readouterr()
    assert (printed.out + printed.err).splitlines() == [
        f"error: the MLflow experiment 'lenet-sweeps' at {uri} was deleted (its runs are kept until the store is "
        f"cleaned up); restore it with `{restore}`, or name another with mlflow.experiment=NAME"]
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    kept = client.search_runs([experiment_id], run_view_type=ViewType.ALL)
    assert [r.info.run_id for r in kept] == [first.run_id]

    subprocess.run(restore, shell=True, check=True, capture_output=True,
                   env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"  # the advice works
