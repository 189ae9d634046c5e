"""Bad input is refused in one line naming the value (and the choices), before anything is created."""
import hashlib
import os
import sqlite3

import pytest
import torch

from experiments import bench, export, inspect
from experiments.errors import BadInput
from experiments.validate import check_command

from ..support.commands import imported_by
from ..support.idx import FILES, write_dataset


class LateCheckingAdam(torch.optim.Adam):
    """An optimizer from outside torch that checks its lr only once it holds the parameters."""

    def __init__(self, params, lr, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        if lr > 0.1:
            raise ValueError(f"lr {lr} is above 0.1")


@pytest.mark.parametrize("argv, message", [
    (["model=lenet7"], "unknown model 'lenet7'; choose one of: classic, d2l"),
    (["-m", "optim=sgd,rmsprop"], "unknown optim 'rmsprop'; choose one of: adam, sgd"),
    (["data=cifar10"], "unknown data 'cifar10'; choose one of: fashion_mnist, mnist, mnist5k"),
    (["trainer.epoch=3"], "unknown key 'trainer.epoch'; keys under trainer: epochs, batch_size"),
    (["optim.lr=0"], "optim.lr 0 must be a finite number > 0"),
    (["-m", "optim.lr=0.1,-0.1"], "optim.lr -0.1 must be a finite number > 0"),
    (["optim.lr=inf"], "optim.lr inf must be a finite number > 0"),
    (["optim.lr=1e400"], "optim.lr inf must be a finite number > 0"),
    # torch's own checks of an optimizer's arguments, and an argument it does not take
    (["optim.betas=[0.9,2]"], "Invalid beta parameter at index 1: 2"),
    (["optim=sgd", "+optim.nesterov=true"], "Nesterov momentum requires a momentum and zero dampening"),
    (["+optim.momentum=0.9"], "got an unexpected keyword argument 'momentum'"),
    # an optimizer from elsewhere that checks its arguments only once it holds the parameters
    (["optim._target_=tests.unit.test_bad_input.LateCheckingAdam", "optim.lr=0.5"], "lr 0.5 is above 0.1"),
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
    (["mlflow.heartbeat_s=-1"], "mlflow.heartbeat_s -1 must be a number of seconds > 0"),
    # The types of trainer, mlflow and the top level (experiments.config.Config), checked as Hydra composes.
    (["trainer.epochs=abc"], "trainer.epochs 'abc' must be a whole number"),
    (["-m", "trainer.batch_size=64,6.5"], "trainer.batch_size 6.5 must be a whole number"),
    (["seed=first"], "seed 'first' must be a whole number"),
    (["mlflow.server_patience_s=soon"], "mlflow.server_patience_s 'soon' must be a number"),
    (["resume=maybe"], "resume 'maybe' must be true or false"),
    (["data.fit_to_input=crop"], "unknown data.fit_to_input 'crop'; choose one of: pad, resize"),
    (["trainer.compile=jit"], "unknown trainer.compile 'jit'; choose one of: auto, cuda_graph, torch_compile, off"),
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
    with pytest.raises(BadInput, match=f"mnist not found in {tmp_path}/MNIST/raw and downloading is off "
                                       r"\(data.download=false\).* or run once with network and data.download=true"):
        check_command(["data=mnist", f"data.root={tmp_path}", "data.download=false"])


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_idx_files_are_named(tmp_path, damage):
    root = write_dataset(tmp_path, "FashionMNIST")
    images = root / "FashionMNIST" / "raw" / FILES["train", "images"]
    data = images.read_bytes()
    images.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x01\x02\x03\x04" + data[4:])
    with pytest.raises(BadInput, match="fashion_mnist files in .* could not be read"):
        check_command(["data=fashion_mnist", f"data.root={root}", "data.download=false"])


@pytest.mark.parametrize("uri, message", [
    ("sqlite:///{tmp}/mlflow.db",
     "no MLflow store at sqlite:///{tmp}/mlflow.db; run a sweep first, or set --tracking-uri"),
    ("http://127.0.0.1:9", "cannot reach the MLflow tracking server at http://127.0.0.1:9 (ConnectionError); start "
                           "it, or set --tracking-uri"),
])
def test_export_from_a_missing_store_or_server_is_one_line_and_creates_nothing(tmp_path, capsys, uri, message):
    # MLflow's own client would create an empty store here, or retry the dead server for minutes.
    assert export.main(["--tracking-uri", uri.format(tmp=tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {message.format(tmp=tmp_path)}\n"
    assert not any(tmp_path.iterdir())


def test_export_from_an_empty_store_file_says_it_holds_no_runs_and_leaves_it_empty(tmp_path, capsys):
    # A 0-byte mlflow.db (touched, or a store emptied by hand): reading it must not write MLflow's schema into it.
    store = tmp_path / "mlflow.db"
    store.touch()
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: the MLflow store sqlite:///{store} is an empty file: it holds no runs "
                                       f"yet; run a sweep first, or set --tracking-uri\n")
    assert store.stat().st_size == 0 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    (b"this is not a database" * 100, "is not a readable MLflow store (file is not a database); move it aside"),
    (None, "is an SQLite database but not an MLflow store"),
])
def test_a_store_that_is_not_an_mlflow_store_is_named_and_never_written(tmp_path, capsys, content, message):
    store = tmp_path / "mlflow.db"
    if content is None:
        with sqlite3.connect(store) as db:
            db.execute("CREATE TABLE notes (text)")
    else:
        store.write_bytes(content)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with pytest.raises(BadInput) as refused:
        check_command(["-m", "model=classic,d2l", f"runs_dir={tmp_path}"])
    assert message in str(refused.value)
    assert export.main(["--tracking-uri", f"sqlite:///{store}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


CHECK_A_SWEEP = """
from experiments.validate import check_command
check_command(["-m", "model=classic,d2l", "optim=sgd,adam", "runs_dir=" + sys.argv[1]])
"""


@pytest.mark.slow  # a fresh process of its own: seconds of imports
def test_checking_a_sweep_leaves_torch_dynamo_to_the_jobs_that_train(tmp_path):
    # Building an optimizer on a real parameter imports torch._dynamo (about 1 CPU s): a joblib or SLURM parent
    # would pay it for jobs that train in processes of their own.
    assert imported_by(CHECK_A_SWEEP, ("torch._dynamo",), str(tmp_path / "runs")) == []
