"""The same sweep command with other launchers, a sweeper and a tracking server: one parent, one child per job."""
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from experiments import export
from experiments.config import CONF_DIR, PROJECT_ROOT, register_resolvers
from experiments.validate import BadInput, compose_job

from .jobs import job_runs
from .servers import MlflowServer


def run(*args):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


def sweep_runs(uri):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lenet-sweeps")
    found = client.search_runs([experiment.experiment_id], max_results=100)
    (parent,) = [r for r in found if r.data.tags.get("lenet.role") == "sweep"]
    children = [r for r in found if r.data.tags.get("lenet.role") == "job"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    return client, parent, children


@pytest.mark.slow
def test_submitit_local_runs_the_sweep_through_submitit(runs_dir):
    run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", "hydra/launcher=submitit_local",
        f"runs_dir={runs_dir}")
    _, parent, children = sweep_runs(f"sqlite:///{runs_dir}/mlflow.db")
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["model=classic", "model=d2l"]
    assert {r.info.status for r in children} == {"FINISHED"}
    assert list(runs_dir.glob("hydra/multirun/*/.submitit/*/*_log.out"))  # submitit's own job logs


def test_slurm_launcher_composes_with_one_gpu_per_job():
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.lenet_sweeps.SlurmLauncher"  # submitit's, made to fail loudly
    assert (launcher.gpus_per_node, launcher.nodes, launcher.tasks_per_node) == (1, 1, 1)
    assert launcher.cpus_per_task == 4 and launcher.timeout_min == 30
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # logs beside the sweep's outputs


@pytest.mark.slow
def test_optuna_search_tracks_each_trial_under_the_study(runs_dir):
    proc = run("experiments.run", "-m", "hydra/sweeper=search", "hydra.sweeper.n_trials=3", "trainer.epochs=1",
               f"runs_dir={runs_dir}")
    assert "Best parameters" in proc.stdout + proc.stderr
    _, parent, trials = sweep_runs(f"sqlite:///{runs_dir}/mlflow.db")
    assert len(trials) == 3 and {r.info.status for r in trials} == {"FINISHED"}
    for trial in trials:
        assert 1e-4 <= float(trial.data.params["optim.lr"]) <= 1.0
        assert trial.data.params["trainer.batch_size"] in {"64", "128", "256", "512"}
        assert trial.info.run_name.startswith("optim.lr=") and "trainer.epochs" not in trial.info.run_name
        assert "best_val_acc" in trial.data.metrics  # the objective the sweeper maximised
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_eight_jobs_four_at_a_time_lose_nothing(runs_dir):
    proc = run("experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam", "seed=0,1", "trainer.epochs=2",
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", f"runs_dir={runs_dir}",
               "data.normalize=none", "trainer.batch_size=256")  # the d2l book's settings: no run diverges
    assert "locked" not in proc.stdout + proc.stderr
    jobs = job_runs(runs_dir)
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    assert len(jobs) == 8 and {r.info.status for r in jobs} == {"FINISHED"}
    assert len({r.data.tags["lenet.config_hash"] for r in jobs}) == 8
    for job in jobs:
        for metric in ("train_loss", "val_acc", "samples_per_second"):
            assert [m.step for m in client.get_metric_history(job.info.run_id, metric)] == [1, 2]
        assert "test_acc" in job.data.metrics
    (parent,) = job_runs(runs_dir, "sweep")
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}


@pytest.fixture
def tracking_server(tmp_path):
    """A real `mlflow server` on a free loopback port: sqlite backend, artifacts served by the server."""
    server = MlflowServer(tmp_path).start()
    yield server.uri, server.artifacts
    server.stop()


@pytest.mark.slow
def test_sweep_logs_to_a_tracking_server_and_export_reads_it_back(tracking_server, tmp_path, capsys):
    uri, artifact_store = tracking_server
    run("experiments.run", "-m", "model=classic,d2l", "trainer.epochs=1", f"mlflow.tracking_uri={uri}",
        f"runs_dir={tmp_path / 'runs'}")
    client, parent, children = sweep_runs(uri)
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    for child in children:
        assert "model_best.pt" in {a.path for a in client.list_artifacts(child.info.run_id)}
    assert list(artifact_store.rglob("model_best.pt"))  # uploaded through the server, kept where it keeps them
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # nothing went to the local store
    assert export.main(["--tracking-uri", uri, "--out", str(tmp_path / "exports")]) == 0
    assert capsys.readouterr().out.count("| FINISHED |") == 2


def test_a_missing_extra_is_named(monkeypatch):
    from hydra.errors import MissingConfigException

    def missing(overrides):
        raise MissingConfigException("no launcher", "hydra/launcher/submitit_slurm", ["basic"])

    monkeypatch.setattr("experiments.validate.compose", missing)
    with pytest.raises(BadInput, match=r"hydra/launcher=submitit_slurm needs the 'slurm' extra: pip install"):
        compose_job(["hydra/launcher=submitit_slurm"])


def test_the_slurm_launcher_is_a_hydra_plugin_even_in_an_editable_install():
    from hydra.core.plugins import Plugins
    from hydra_plugins.lenet_sweeps import SlurmLauncher

    from experiments.run import register_plugins

    register_plugins()
    # (Hydra's plugin scan re-executes submitit's module, so its class is compared by name.)
    assert SlurmLauncher.__mro__[1].__module__ + ".SlurmLauncher" == \
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert Plugins.instance().class_name_to_class["hydra_plugins.lenet_sweeps.SlurmLauncher"] is SlurmLauncher


def test_slurm_limits_are_read_as_scontrol_writes_them():
    from experiments.slurm import Partition, gpu_count, minutes, records, shortfalls

    (node,) = records("NodeName=gpu01 Arch=x86_64 CPUTot=64 Gres=gpu:a100:4(S:0-1),shard:8 "
                      "OS=Linux 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC RealMemory=515000 State=IDLE")
    assert node["OS"] == "Linux 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC" and node["RealMemory"] == "515000"
    assert gpu_count(node["Gres"]) == 4 and gpu_count("(null)") == 0 and gpu_count("gpu:2") == 2
    assert [minutes(t) for t in ("30", "01:00:00", "1-12:00:00", "UNLIMITED")] == [30, 60, 2160, float("inf")]
    cpu = Partition("cpu", up=True, nodes=1, max_time_min=60, cpus=2, mem_mb=24105, gpus=0)
    fits = {"gpus_per_node": 0, "cpus_per_task": 1, "tasks_per_node": 1, "mem_gb": 2, "timeout_min": 30}
    assert shortfalls(fits, cpu) == []
    problems = shortfalls({"gpus_per_node": 1, "cpus_per_task": 4, "tasks_per_node": 1, "mem_gb": 16,
                           "timeout_min": 90, "nodes": 2}, cpu)
    assert [p.split(" (")[0] for p in problems] == ["1 GPU(s) per node", "4 CPUs per node", "2 nodes per job",
                                                    "90 minutes per job"]
    assert "for it: hydra.launcher.gpus_per_node=0" in problems[0]
    assert "for it: hydra.launcher.cpus_per_task=2" in problems[1]
