"""The launchers' configs and the SLURM launcher's reading of the cluster, without launching anything."""
import pytest
from hydra import compose, initialize_config_dir

from experiments.config import CONF_DIR, prepare_hydra
from experiments.errors import BadInput
from experiments.validate import compose_job


def test_slurm_launcher_composes_with_one_gpu_per_job():
    prepare_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.lenet_sweeps.SlurmLauncher"  # submitit's, made to fail loudly
    assert (launcher.gpus_per_node, launcher.nodes, launcher.tasks_per_node) == (1, 1, 1)
    assert launcher.cpus_per_task == 4 and launcher.timeout_min == 30
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # logs beside the sweep's outputs
    assert (launcher.poll_s, launcher.dead_job_grace_s) == (2.0, 15.0)  # how the sweep watches its jobs


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

    from experiments.config import register_plugins

    register_plugins()
    # (Hydra's plugin scan re-executes submitit's module, so its class is compared by name.)
    assert SlurmLauncher.__mro__[1].__module__ + ".SlurmLauncher" == \
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert Plugins.instance().class_name_to_class["hydra_plugins.lenet_sweeps.SlurmLauncher"] is SlurmLauncher


def test_slurm_limits_are_read_as_scontrol_writes_them():
    from experiments.launchers.slurm_cluster import Partition, gpu_count, minutes, records, shortfalls

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


def test_a_slurm_time_limit_that_cannot_hold_a_jobs_start_is_refused_before_anything_runs():
    from experiments.launchers.slurm_cluster import too_short

    # submitit has SLURM warn a job signal_delay_s (120 s) before its limit, and SLURM may do so a minute early:
    # with timeout_min=1 the warning came before the job had made its run.
    assert too_short(30, 120) is None and too_short(4, 120) is None and too_short(2, 20) is None
    assert too_short(1, 120) == ("hydra.launcher.timeout_min=1 cannot fit a job: SLURM warns it "
                                 "hydra.launcher.signal_delay_s=120 s before its limit (and up to 60 s earlier), "
                                 "which leaves 0 s, and a job takes about 30 s to start; set "
                                 "hydra.launcher.timeout_min=4 or more")
    assert "timeout_min=4 or more" in too_short(3, 120) and "timeout_min=2 or more" in too_short(1, 20)
    with pytest.raises(BadInput, match=r"^hydra.launcher.timeout_min=1 cannot fit a job"):
        from experiments.validate import check_launcher

        check_launcher(["hydra/launcher=slurm", "hydra.launcher.timeout_min=1"])


def test_a_slurm_job_that_left_no_result_is_named_by_the_state_slurm_ended_it_in(monkeypatch):
    from experiments.launchers import slurm, slurm_cluster

    # scontrol -o show job, as SLURM 22-24 writes it for an array task the cgroup's memory limit ended
    line = ("JobId=15 ArrayJobId=15 ArrayTaskId=0 JobName=run UserId=root(0) JobState=OUT_OF_MEMORY "
            "Reason=OutOfMemory Dependency=(null) ExitCode=0:125 RunTime=00:00:41 TimeLimit=00:30:00\n")
    monkeypatch.setattr(slurm_cluster, "scontrol", lambda *args: line)
    assert slurm_cluster.final_state("15_0") == "OUT_OF_MEMORY"
    params = {"mem_gb": 2, "timeout_min": 30}
    assert slurm.ended_how("OUT_OF_MEMORY", params) == (
        "was killed for memory by SLURM (OUT_OF_MEMORY: above hydra.launcher.mem_gb=2); raise hydra.launcher.mem_gb "
        "or lower trainer.batch_size")
    assert "at its time limit (TIMEOUT: hydra.launcher.timeout_min=30)" in slurm.ended_how("TIMEOUT", params)
    assert slurm.ended_how("FAILED", params) is None and slurm.ended_how(None, params) is None  # the generic line

    def gone(*args):
        raise slurm_cluster.SlurmUnavailable("no controller")

    monkeypatch.setattr(slurm_cluster, "scontrol", gone)
    assert slurm_cluster.final_state("15_0") is None
