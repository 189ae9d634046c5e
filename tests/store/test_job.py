"""One job, in this process: the real config composed as the run command composes it, a real MLflow store."""
import logging
import shutil
import subprocess
import threading

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from experiments import export
from experiments.config import compose_with_choices, config_hash
from experiments.job import run_job
from experiments.record import provenance
from experiments.record.runs import RunLog
from experiments.record.session import scope
from experiments.record.store import connect

from ..support.store import client_of, job_config, runs_in


def test_torchvision_dataset_run_logs_class_names(runs_dir, idx_root):
    cfg, choices = job_config(runs_dir, "data=fashion_mnist", f"data.root={idx_root}", "data.download=false",
                              "model=d2l", "trainer.epochs=2")
    tracking = connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    result = run_job(cfg, tracking, "fashion", {"lenet.role": "job"}, runs_dir / "out", choices)
    (only,) = runs_in(runs_dir)
    assert result.status == "FINISHED" and only.info.run_id == result.run_id
    assert only.info.status == "FINISHED" and only.data.params["train_size"] == "180"
    assert (only.data.params["model"], only.data.params["data"]) == ("d2l", "fashion_mnist")
    client = tracking.client
    matrix = pd.read_csv(client.download_artifacts(only.info.run_id, "confusion_matrix.csv", str(runs_dir)),
                         index_col=0)
    assert matrix.index[0] == "T-shirt/top" and matrix.to_numpy().sum() == 100
    predictions = pd.read_csv(client.download_artifacts(only.info.run_id, "predictions.csv", str(runs_dir)))
    assert len(predictions) == 100 and "Ankle boot" in set(predictions["label_name"])


def run(runs_dir, *overrides, name="job"):
    cfg, choices = job_config(runs_dir, *overrides)
    return run_job(cfg, connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment), name, {"lenet.role": "job"},
                   runs_dir / "out", choices)


def test_rerun_skips_finished_jobs_and_resume_false_reruns_them(runs_dir, caplog):
    caplog.set_level(logging.INFO, logger="experiments.job")
    first = run(runs_dir)
    second = run(runs_dir)
    assert (first.status, second.status) == ("FINISHED", "SKIPPED") and second.run_id == first.run_id
    assert "skipped, already FINISHED as run" in caplog.text
    assert second.objective == first.objective  # a sweeper still gets the job's best_val_acc
    assert len(runs_in(runs_dir)) == 1
    assert run(runs_dir, "resume=false").status == "FINISHED"
    assert len(runs_in(runs_dir)) == 2
    assert run(runs_dir, "trainer.epochs=2").status == "FINISHED"  # a changed value is a new job
    assert len(runs_in(runs_dir)) == 3


def test_identity_travels_a_run_finished_elsewhere_is_counted(tmp_path, idx_root, empty_store):
    shutil.copy(empty_store, tmp_path / "shared.db")
    store = f"sqlite:///{tmp_path}/shared.db"  # one tracking store, two checkouts with their own paths
    mine = ["data=mnist", f"data.root={idx_root}", "data.download=false", f"mlflow.tracking_uri={store}"]
    first = run(tmp_path / "alice", *mine)
    theirs = [*mine, f"data.cache_dir={tmp_path}/bob-cache", "trainer.progress=bar"]
    second = run(tmp_path / "bob", *theirs)
    assert second.status == "SKIPPED" and second.run_id == first.run_id
    a, _ = job_config(tmp_path / "alice", *mine)
    b, _ = job_config(tmp_path / "bob", *mine)
    assert a.runs_dir != b.runs_dir and config_hash(a) == config_hash(b)
    c, _ = job_config(tmp_path / "alice", *mine, "data.fit_to_input=resize", "model=classic")
    d, _ = job_config(tmp_path / "alice", *mine, "model=classic")
    assert config_hash(c) != config_hash(d)  # what is computed still tells jobs apart


def test_runs_record_the_commit_a_hash_of_uncommitted_changes_and_the_library_code(tmp_path, monkeypatch, runs_dir):
    repo = tmp_path / "repo"
    (repo / "lenet").mkdir(parents=True)
    (repo / "lenet" / "model.py").write_text("bias = 0.0\n")
    git = lambda *args: subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x", "--allow-empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lenet")
    monkeypatch.setattr(provenance, "PROJECT_ROOT", repo)
    monkeypatch.setattr(provenance, "LIBRARY", repo / "lenet")

    def state():  # each in a sweep of its own, as after an edit between two sweeps
        with scope():
            return provenance.provenance()

    clean = state()
    assert clean["lenet.git_dirty"] == "false" and "lenet.git_diff" not in clean
    (repo / "lenet" / "model.py").write_text("bias = 0.1\n")
    first = state()
    (repo / "lenet" / "model.py").write_text("bias = 0.2\n")
    second = state()
    assert first["lenet.git_dirty"] == second["lenet.git_dirty"] == "true"
    assert first["lenet.git_diff"] != second["lenet.git_diff"]  # two different edits of one commit differ here
    assert len({clean["lenet.code"], first["lenet.code"], second["lenet.code"]}) == 3
    assert clean["mlflow.source.git.commit"] == second["mlflow.source.git.commit"]
    monkeypatch.undo()
    run(runs_dir)
    (only,) = runs_in(runs_dir)  # this checkout's own, on a real run
    assert only.data.tags["lenet.code"] == provenance.code_version()
    assert len(only.data.tags["mlflow.source.git.commit"]) == 40


def test_an_error_while_logging_params_ends_the_run_failed(runs_dir, monkeypatch):
    def broken(self, params):
        raise OSError("disk on fire")

    monkeypatch.setattr(RunLog, "params", broken)
    with pytest.raises(OSError, match="disk on fire"):
        run(runs_dir)
    (only,) = runs_in(runs_dir)
    assert only.info.status == "FAILED"
    assert (only.data.tags["error.type"], only.data.tags["error.message"]) == ("OSError", "disk on fire")
    assert "error.txt" in {a.path for a in MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").list_artifacts(
        only.info.run_id)}


def test_a_failure_in_training_ends_failed_and_an_interrupt_ends_killed(runs_dir, monkeypatch):
    import experiments.job

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.raises(RuntimeError, match="injected fault in forward"):
        run(runs_dir, "model._target_=tests.support.faults.exploding_lenet", name="exploding")
    monkeypatch.setattr(experiments.job, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(runs_dir, "seed=1", name="interrupted")
    status = {r.info.run_name: r.info.status for r in runs_in(runs_dir)}
    assert status == {"exploding": "FAILED", "interrupted": "KILLED"}


def test_a_bad_value_raises_before_any_run_exists(runs_dir):
    with pytest.raises(ValueError, match=r"val_fraction 1.5 is outside \[0, 1\)"):  # the library's words
        run(runs_dir, "data.val_fraction=1.5")
    assert runs_in(runs_dir) == []


def test_composed_choices_name_the_group_options():
    cfg, choices = compose_with_choices(["model=d2l", "optim=sgd"])
    assert (choices["model"], choices["optim"], choices["data"]) == ("d2l", "sgd", "mnist5k")
    assert "hydra" not in cfg and not any(group.startswith("hydra") for group in choices)


def test_a_finished_run_whose_files_are_gone_is_named_by_export_and_trained_again(runs_dir, caplog, capsys):
    caplog.set_level(logging.INFO, logger="experiments.record.resume")
    first = run(runs_dir)
    done = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").get_run(first.run_id)
    assert set(done.data.tags["lenet.artifacts"].split(",")) >= {"model_best.pt", "predictions.csv", "history.csv"}
    shutil.rmtree(done.info.artifact_uri.removeprefix("file://"))  # the user cleaned up a disk
    assert export.main(["--tracking-uri", f"sqlite:///{runs_dir}/mlflow.db", "--filter", "params.model = 'classic'",
                        "--out", str(runs_dir / "exports")]) == 0
    said = capsys.readouterr().out
    assert f"Runs that lack files (deleted?): run {first.run_id} (" in said and "model_best.pt" in said
    second = run(runs_dir)
    assert second.status == "FINISHED" and second.run_id != first.run_id  # not counted: trained again
    assert f"its FINISHED run {first.run_id} lacks " in caplog.text and "model_best.pt" in caplog.text


def test_a_finished_run_of_other_library_code_is_trained_again_unless_asked(runs_dir, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="experiments.record.resume")
    first = run(runs_dir)
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab")  # lenet/ changed since (injected)
    assert run(runs_dir, "reuse_other_code=true").run_id == first.run_id  # asked: counted, as before
    second = run(runs_dir)
    assert second.status == "FINISHED" and second.run_id != first.run_id
    assert "was made by other library code" in caplog.text and "reuse_other_code=true counts it" in caplog.text


@pytest.fixture
def in_background(monkeypatch):
    """Writes off the training path, as in the run command's sweep; every queued write done afterwards."""

    with scope() as session:  # the sweep's own writer, drained and stopped at the end
        session.background.enabled = True
        yield session.background


def test_a_run_is_finished_only_once_its_files_have_landed_in_the_background(runs_dir, monkeypatch, in_background):
    import experiments.artifacts

    released, real = threading.Event(), experiments.artifacts.write_files

    def held(*args):  # the writer thread stops here until the test has looked at the record
        assert released.wait(60)
        real(*args)

    monkeypatch.setattr(experiments.artifacts, "write_files", held)
    result = run(runs_dir)  # the job returns: its writes are still queued
    (only,) = runs_in(runs_dir)
    assert result.status == "FINISHED" and only.info.status == "RUNNING"
    released.set()
    in_background.drain()
    (only,) = runs_in(runs_dir)
    files = {a.path for a in client_of(runs_dir).list_artifacts(only.info.run_id)}
    assert only.info.status == "FINISHED" and {"model_best.pt", "predictions.csv", "history.csv"} <= files


def test_a_write_that_fails_in_the_background_ends_its_run_failed(runs_dir, monkeypatch, in_background):
    import experiments.artifacts

    def broken(*args):
        raise OSError("injected: the plots could not be written")

    monkeypatch.setattr(experiments.artifacts, "write_files", broken)
    run(runs_dir)
    in_background.drain()
    (only,) = runs_in(runs_dir)
    assert only.info.status == "FAILED" and "the plots could not be written" in only.data.tags["error.message"]
    assert in_background.failures == ["job"]


def test_a_run_logs_exactly_the_metrics_the_registry_names(runs_dir):
    from experiments import metrics

    done = run(runs_dir)
    client = client_of(runs_dir)
    record = client.get_run(done.run_id).data
    logged = record.metrics
    assert set(logged) == set(metrics.per_epoch()) | set(metrics.final())
    # written with the final metrics, and once the files are logged (no model here: QUICK turns it off)
    assert record.params["step_kind"] in ("eager", "cuda_graph", "torch_compile")
    assert "model_best.pt" in record.tags["lenet.artifacts"] and "lenet.model" not in record.tags
    for name in metrics.per_epoch():
        assert [m.step for m in client.get_metric_history(done.run_id, name)] == [1]  # per epoch: a curve
    for name in metrics.final():
        assert [m.step for m in client.get_metric_history(done.run_id, name)] == [0]  # once: a bar


def test_where_the_best_epoch_is_the_last_one_test_pass_gives_both_its_metrics(runs_dir, monkeypatch):
    import experiments.job

    passes = []
    evaluate = experiments.job.evaluate
    monkeypatch.setattr(experiments.job, "evaluate", lambda *a, **k: passes.append(1) or evaluate(*a, **k))
    done = run(runs_dir, "trainer.epochs=1")  # one epoch: its model is the best and the last
    metrics = client_of(runs_dir).get_run(done.run_id).data.metrics
    assert passes == [] and metrics["best_epoch"] == 1
    assert (metrics["last_test_acc"], metrics["last_test_loss"]) == (metrics["test_acc"], metrics["test_loss"])
    passes.clear()
    # An lr that moves nothing: every epoch's validation accuracy ties the first's, so the first stays the best.
    run(runs_dir, "trainer.epochs=3", "optim.lr=1e-12", "model=d2l", "optim=sgd")
    later = [r for r in runs_in(runs_dir) if r.data.params["trainer.epochs"] == "3"][0].data.metrics
    assert later["best_epoch"] == 1 and passes == [1]  # the last model, not the best, is tested apart
