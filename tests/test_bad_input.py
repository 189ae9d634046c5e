"""Bad input is refused in one line naming the value, before any run, directory or file is made."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from experiments import bench, export, inspect
from experiments import run as run_command
from experiments.job import run_job
from experiments.tracking import connect, tracked_run
from experiments.validate import BadInput, check_command

from .commands import run, runs
from .idx import FILES, write_dataset
from .jobs import job_config


@pytest.mark.parametrize("argv, message", [
    (["model=lenet7"], "unknown model 'lenet7'; choose one of: classic, d2l"),
    (["-m", "optim=sgd,rmsprop"], "unknown optim 'rmsprop'; choose one of: adam, sgd"),
    (["data=cifar10"], "unknown data 'cifar10'; choose one of: fashion_mnist, mnist, mnist5k"),
    (["trainer.epoch=3"], "unknown key 'trainer.epoch'; keys under trainer: epochs, batch_size"),
    (["optim.lr=0"], "optim.lr 0 must be a finite number > 0"),
    (["-m", "optim.lr=0.1,-0.1"], "optim.lr -0.1 must be a finite number > 0"),
    (["optim.lr=inf"], "optim.lr inf must be a finite number > 0"),
    (["optim.lr=1e400"], "optim.lr inf must be a finite number > 0"),
    (["data.val_fraction=0.9999"], "data.val_fraction 0.9999 leaves none of the 4000 training samples to train on; "
                                   "use at most 0.9997"),
    (["data.normalize=mean_std", "data.std=0"], "data.std 0 must be > 0 (images are divided by it)"),
    (["data.normalize=mean_std", "data.mean=nan"], "data.mean nan must be a finite number"),
    (["runs_dir=/etc/hostname/runs"], "runs_dir /etc/hostname/runs cannot be created: /etc/hostname is a file, not a "
                                      "directory"),
    (["runs_dir=/proc/1/runs"], "runs_dir /proc/1/runs cannot be created: no permission to write in /proc/1"),
    (["mlflow.tracking_uri=file:///tmp/mlruns"], "mlflow.tracking_uri 'file:///tmp/mlruns' is not a tracking store "
                                                 "this harness can use; MLflow 3 keeps no runs in a file store"),
    (["mlflow.tracking_uri=postgresql://me@127.0.0.1/mlflow"], "its database driver is not installed (No module named "
                                                               "'psycopg'); pip install -e '.[postgres]'"),
    (["mlflow.experiment="], "mlflow.experiment '' must be a non-empty name"),
    (["mlflow.server_patience_s=0"], "mlflow.server_patience_s 0 must be a number of seconds > 0"),
    (["trainer.epochs=0"], "trainer.epochs 0 must be >= 1"),
    (["trainer.batch_size=0"], "trainer.batch_size 0 must be >= 1"),
    (["data.val_fraction=1.0"], "data.val_fraction 1.0 is outside [0, 1)"),
    (["data.val_fraction=-0.2"], "data.val_fraction -0.2 is outside [0, 1)"),
    (["model.activation=swish"], "unknown activation 'swish'; choose one of: sigmoid, tanh, relu"),
    (["model.pool=min"], "unknown pool 'min'; choose one of: avg, max"),
    (["device=tpu"], "unknown device 'tpu'; choose one of: auto, cpu, cuda, cuda:N"),
    (["mlflow.tracking_uri=http://127.0.0.1:9"], "cannot reach the MLflow tracking server at http://127.0.0.1:9"),
    # zsh and sh leave a ~ after = as typed: it would make a folder named ~ here, which rm -rf ~ then "cleans up".
    (["runs_dir=~/lenet-runs"], f"runs_dir ~/lenet-runs: ~ is not expanded here (the shell left it as typed); "
                                f"write the full path: runs_dir={os.path.expanduser('~/lenet-runs')}"),
    (["-m", "model=classic,d2l", "runs_dir=~/lenet-runs"], "runs_dir ~/lenet-runs: ~ is not expanded here"),
    (["runs_dir='~/lenet-runs'"], "runs_dir ~/lenet-runs: ~ is not expanded here"),  # quoted for Hydra
    (["data=mnist", "data.root=~/data"], f"data.root ~/data: ~ is not expanded here (the shell left it as typed); "
                                         f"write the full path: data.root={os.path.expanduser('~/data')}"),
    (["mlflow.tracking_uri=sqlite:///~/runs/mlflow.db"], "mlflow.tracking_uri sqlite:///~/runs/mlflow.db: ~ is not "
                                                         "expanded here (the shell left it as typed); write the full "
                                                         f"path: mlflow.tracking_uri=sqlite:///{os.path.expanduser('~')}"
                                                         "/runs/mlflow.db"),
    (["-m", "model=classic,d2l", "mlflow.experiment=a b)"], "cannot read the override 'mlflow.experiment=a b)' "
                                                             "(extraneous input ')' expecting <EOF>); quote the value "
                                                             "for Hydra: 'mlflow.experiment=\"a b)\"'"),
])
def test_bad_input_is_one_line_naming_the_value(argv, message):
    with pytest.raises(BadInput) as err:
        check_command(argv)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("command, argv, message", [
    (inspect, ["model=lenet7"], "unknown model 'lenet7'; choose one of: classic, d2l"),
    (inspect, ["model=d2l", "model.activation=swish"], "unknown activation 'swish'; choose one of: sigmoid, tanh"),
    (bench, ["model.pool=min"], "unknown pool 'min'; choose one of: avg, max"),
    (bench, ["--sweep", "optim=sgd,rmsprop"], "unknown optim 'rmsprop'; choose one of: adam, sgd"),
])
def test_inspect_and_bench_check_their_overrides_as_the_run_command_does(capsys, command, argv, message):
    assert command.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_missing_dataset_offline_is_named_before_anything_runs(tmp_path):
    with pytest.raises(BadInput, match=f"mnist not found in {tmp_path}/MNIST/raw and data.download=false"):
        check_command(["data=mnist", f"data.root={tmp_path}", "data.download=false"])


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_idx_files_are_named(tmp_path, damage):
    root = write_dataset(tmp_path, "FashionMNIST")
    images = root / "FashionMNIST" / "raw" / FILES["train", "images"]
    data = images.read_bytes()
    images.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x01\x02\x03\x04" + data[4:])
    with pytest.raises(BadInput, match="fashion_mnist files in .* could not be read"):
        check_command(["data=fashion_mnist", f"data.root={root}", "data.download=false"])


def test_bad_input_exits_non_zero_and_leaves_the_store_untouched(runs_dir, monkeypatch, capsys):
    cfg, choices = job_config(runs_dir)
    run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
            runs_dir / "out", choices)
    store = runs_dir / "mlflow.db"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    monkeypatch.setattr(sys, "argv", ["run", "-m", "model=classic,d2l", "optim.lr=-1", f"runs_dir={runs_dir}"])
    with pytest.raises(SystemExit) as exit_code:
        run_command.cli()
    assert exit_code.value.code == 2
    assert capsys.readouterr().err.strip() == "error: optim.lr -1 must be a finite number > 0"
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert len(runs(runs_dir)[1]) == 1 and not runs(runs_dir, "sweep")[1]
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--experiment", "lenet-sweep"]) == 1
    assert capsys.readouterr().err.strip() == f"error: no experiment 'lenet-sweep' at sqlite:///{store}; " \
                                              "experiments there: Default, lenet-sweeps"
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before  # the typo made no experiment
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--filter", "params.model == classic"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: bad --filter 'params.model == classic': Parameter value is either not quoted")


@pytest.mark.parametrize("uri, message", [
    ("sqlite:///{tmp}/mlflow.db",
     "no MLflow store at sqlite:///{tmp}/mlflow.db; run a sweep first, or set --tracking-uri"),
    ("http://127.0.0.1:9", "cannot reach the MLflow tracking server at http://127.0.0.1:9 (ConnectionError); start "
                           "it, or set --tracking-uri"),
])
def test_export_from_a_missing_store_or_server_is_one_line_and_creates_nothing(tmp_path, capsys, uri, message):
    # MLflow's own client would create an empty store here, or retry the dead server for minutes.
    assert export.main(["--tracking-uri", uri.format(tmp=tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"error: {message.format(tmp=tmp_path)}\n"
    assert not any(tmp_path.iterdir())




@pytest.mark.parametrize("content, message", [
    (b"this is not a database" * 100, "is not a readable MLflow store (file is not a database); move it aside"),
    (None, "is an SQLite database but not an MLflow store"),
])
def test_a_store_that_is_not_an_mlflow_store_is_named_and_never_written(tmp_path, capsys, content, message):
    store = tmp_path / "mlflow.db"
    if content is None:
        import sqlite3

        with sqlite3.connect(store) as db:
            db.execute("CREATE TABLE notes (text)")
    else:
        store.write_bytes(content)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with pytest.raises(BadInput) as refused:
        check_command(["-m", "model=classic,d2l", f"runs_dir={tmp_path}"])
    assert message in str(refused.value)
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_export_to_a_place_it_cannot_write_is_one_line(runs_dir, capsys):
    cfg, choices = job_config(runs_dir)
    run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), "first", {"lenet.role": "job"},
            runs_dir / "out", choices)
    blocked = runs_dir / "a-file"
    blocked.write_text("")
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--filter", "params.model = 'classic'",
                        "--out", str(blocked / "exports")]) == 1
    assert capsys.readouterr().err == f"error: --out {blocked}/exports cannot be created: {blocked} is a file, not " \
                                      "a directory\n"


@pytest.mark.slow
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


def test_export_of_an_unknown_sweep_names_the_sweeps_there(runs_dir, capsys):
    tracking = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    for sweep_id in ("2026-11-20_10-00-00-aaaaaa", "2026-11-21_10-00-00-bbbbbb"):
        with tracked_run(tracking, f"sweep {sweep_id}", {"lenet.role": "sweep", "lenet.sweep_id": sweep_id}, runs_dir):
            pass
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--sweep", "2026-11-21",
                        "--out", str(runs_dir / "out")]) == 1
    assert capsys.readouterr().err == "error: no sweep '2026-11-21' in this experiment; its newest sweeps: " \
                                      "2026-11-21_10-00-00-bbbbbb, 2026-11-20_10-00-00-aaaaaa (or --sweep latest)\n"
    assert not (runs_dir / "out").exists()
