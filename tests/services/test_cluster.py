"""The main sweep on a real SLURM cluster (one node: this machine), through hydra/launcher=slurm.

tests/services/slurm.sh starts munge, slurmctld and slurmd (and stops them after, unless they were
already up). The node is a CPU-only partition `cpu`; the commands are the README's recipe for one.
Hydra's own launcher contract suites run here too, at the end: one file, so that one test process uses the
cluster at a time (these tests read its queue, and no other's jobs may be in it).
"""
import os
import shutil
import subprocess
import threading
import time

import pytest
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite

from experiments.config import PROJECT_ROOT, register_plugins

from ..support.commands import printed, run, start
from ..support.contracts import BATCHES_OF_2, integration_flags
from ..support.store import QUICK, client_of, runs_in, the_sweep
from . import script, unavailable

pytestmark = pytest.mark.cluster

SIGNALLING = "model._target_=tests.support.faults.signalling_lenet"
# The README's overrides for a CPU-only partition (conf/hydra/launcher/slurm.yaml asks for a GPU).
CPU_PARTITION = ["hydra/launcher=slurm", "hydra.launcher.partition=cpu", "hydra.launcher.gpus_per_node=0",
                 "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        unavailable("a SLURM cluster on this machine needs root (bash tests/services/slurm.sh start)")
    if not all(shutil.which(cmd) for cmd in ("slurmctld", "slurmd", "sbatch", "munged")):
        unavailable("SLURM is not installed here: bash tests/services/slurm.sh install (root) sets it up")
    was_up = script("slurm.sh", "status", check=False).returncode == 0
    script("slurm.sh", "start")
    yield
    if not was_up:
        script("slurm.sh", "stop")


def queue() -> list[str]:
    return subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()


def left_the_queue(job_ids: set, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while set(queue()) & job_ids:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def start_sweep(runs_dir, *overrides):
    """The sweep in a session of its own: its jobs' models can signal it there (tests.support.faults)."""
    proc = start("experiments.run", "-m", *QUICK, *CPU_PARTITION, *overrides, f"runs_dir={runs_dir}", session=True)
    (runs_dir / "sweep.pid").write_text(str(proc.pid))
    return proc


def test_the_main_sweep_runs_as_slurm_jobs_under_one_parent(cluster, runs_dir):
    proc = run("experiments.run", "-m", "model=classic,d2l", "optim=sgd,adam", *CPU_PARTITION, "trainer.epochs=2",
               f"runs_dir={runs_dir}")
    assert "submitted SLURM job(s)" in printed(proc) and "3 of 4 runs finished, 1 diverged" in printed(proc)
    parent, children = the_sweep(runs_dir)
    assert parent.info.status == "FINISHED"
    status = {r.info.run_name: r.info.status for r in children}
    # The same record as on one machine: classic+sgd at lr 0.9 diverges (FAILED, flagged), the rest finish.
    assert status == {"classic+sgd": "FAILED", "classic+adam": "FINISHED", "d2l+sgd": "FINISHED",
                      "d2l+adam": "FINISHED"}
    slurm_ids = {r.data.tags["slurm.job_id"] for r in children}
    assert len(slurm_ids) == 4  # each its own SLURM job (array tasks), recorded on its run
    logs = list(runs_dir.glob("hydra/multirun/*/.submitit/*/*_log.out"))
    assert len(logs) == 4
    assert left_the_queue(slurm_ids)  # each wrote its result, then ended (COMPLETING a moment)


@pytest.mark.parametrize("overrides, refusal", [
    ([], "asks for 1 GPU(s) per node (hydra.launcher.gpus_per_node), but partition 'cpu' has no GPUs; "
         "for it: hydra.launcher.gpus_per_node=0"),
    (["hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=600"],
     "asks for 600 minutes per job (hydra.launcher.timeout_min), but partition 'cpu' allows at most 60; "
     "for it: hydra.launcher.timeout_min=60"),
    (["hydra.launcher.partition=gpu"], "hydra.launcher.partition 'gpu' is not a partition of this cluster; "
                                       "choose one of: cpu"),
])
def test_a_request_the_cluster_cannot_satisfy_is_refused_in_one_line(cluster, tmp_path, overrides, refusal):
    # Under SLURM's default EnforcePartLimits=NO these jobs would be accepted and wait PENDING for ever.
    before = queue()
    proc = run("experiments.run", "-m", "model=classic,d2l", "hydra/launcher=slurm", *overrides,
               f"runs_dir={tmp_path}", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {refusal}" if refusal.startswith("hydra.launcher.partition")
                                        else f"error: hydra/launcher=slurm {refusal}"]
    assert queue() == before and list(tmp_path.iterdir()) == []  # nothing submitted, no run, no folder


def test_sigterm_cancels_the_sweeps_jobs_and_their_runs_end_killed(cluster, runs_dir):
    # The first job to finish an epoch sends the sweep SIGTERM, as a batch system's time limit would.
    proc = start_sweep(runs_dir, "model=classic,d2l", "trainer.epochs=200", SIGNALLING, "+model.signal_name=SIGTERM",
                       f"+model.to=pidfile:{runs_dir}/sweep.pid")
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 143 and "Traceback" not in output, output
    assert "cancelling the sweep's 2 SLURM job(s)" in output
    assert queue() == []  # cancelled and gone before the sweep exits, not left on the cluster
    parent, children = the_sweep(runs_dir)
    assert children and {r.info.status for r in children} == {"KILLED"}  # each job that started a run
    assert parent.info.status == "KILLED"


def test_a_job_killed_on_the_cluster_ends_its_run_killed_in_bounded_time(cluster, runs_dir):
    # kill -9 of the job's process at its first epoch's end, as the kernel's OOM killer does: it writes nothing more.
    proc = start_sweep(runs_dir, "model=classic", "trainer.epochs=200", "hydra.launcher.dead_job_grace_s=3",
                       SIGNALLING, "+model.signal_name=SIGKILL")
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 1 and "Traceback" not in output, output
    (run_,) = runs_in(runs_dir)
    job = run_.data.tags["slurm.job_id"]
    assert f"SLURM job {job} left the queue without a result" in output and f".submitit/{job}/" in output
    assert run_.info.status == "KILLED" and f"(SLURM job {job})" in run_.data.tags["lenet.closed"]
    ended = client_of(runs_dir).get_run(run_.info.run_id).info.end_time
    last_beat = max(m.timestamp for m in client_of(runs_dir).get_metric_history(run_.info.run_id, "train_loss"))
    assert (ended - last_beat) / 1000 < 30  # the queue is read every 2 s, then 3 s of grace for a late result
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FAILED"  # ended by a failure, not by a signal to the sweep


def test_a_request_sbatch_refuses_ends_the_sweep_in_one_line(cluster, runs_dir):
    # No partition limit covers a constraint no node has: sbatch itself refuses it.
    proc = run("experiments.run", "-m", "model=classic,d2l", *CPU_PARTITION, "hydra.launcher.constraint=nosuchfeature",
               f"runs_dir={runs_dir}", check=False)
    assert proc.returncode == 1 and "Traceback" not in printed(proc), printed(proc)
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert error == "error: SLURM refused the sweep's jobs: sbatch: error: Batch job submission failed: " \
                    "Invalid feature specification"
    assert "No runs: the sweep ended before any of its jobs started one." in printed(proc)
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FAILED"  # ended by an error, not by a signal


@pytest.fixture
def drained_node(cluster):
    """The cluster's one node drained (no new job starts there), resumed afterwards."""
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=drain", "reason=lenet-test"], check=True)
    yield node
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False)


def test_jobs_waiting_on_a_drained_node_are_reported_and_given_up_on_in_one_line(drained_node, runs_dir):
    proc = run("experiments.run", "-m", "model=classic,d2l", *CPU_PARTITION, *QUICK, f"runs_dir={runs_dir}",
               "hydra.launcher.pending_report_s=2", "hydra.launcher.pending_timeout_min=0.2", check=False)
    output = printed(proc)
    assert proc.returncode == 1 and "Traceback" not in output, output
    waiting = [line for line in output.splitlines() if "is PENDING since" in line]
    # SLURM gives either reason for a job on a drained node, as its scheduler last looked at the job.
    drained = ("Nodes required for job are DOWN, DRAINED", f"ReqNodeNotAvail, UnavailableNodes:{drained_node}")
    assert len(waiting) >= 4 and any(reason in waiting[0] for reason in drained), waiting  # said while it waited
    assert output.count("waited PENDING") >= 2 and "cancelled, not run" in output
    assert queue() == []  # given up on: nothing left waiting on the cluster
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FAILED" and runs_in(runs_dir) == []


def released_once_requeued(stop: threading.Event) -> None:
    """Start a requeued job now, as an admin may: slurmctld holds one for 120 s (its BeginTime) before it may run
    again, which is the cluster's policy, not what the test checks."""
    while not stop.wait(0.5):
        held = subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i %r"], capture_output=True, text=True).stdout
        for job_id in [line.split()[0] for line in held.splitlines() if line.endswith(" BeginTime")]:
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], capture_output=True)


def test_a_requeued_job_runs_again_and_its_config_has_one_result(cluster, runs_dir):
    # The job asks SLURM to requeue it as its second epoch starts (its first attempt only), as a node set
    # down does to the jobs on it: SLURM stops that attempt and runs the job again.
    stop = threading.Event()
    releaser = threading.Thread(target=released_once_requeued, args=(stop,), daemon=True)
    releaser.start()
    try:
        proc = run("experiments.run", "-m", "model=classic", *CPU_PARTITION, *QUICK, "trainer.epochs=2",
                   "model._target_=tests.support.faults.requeueing_lenet", f"runs_dir={runs_dir}", timeout=400)
    finally:
        stop.set()
        releaser.join()
    assert "1 of 1 runs finished" in printed(proc)
    first, second = runs_in(runs_dir)
    assert first.info.status == "KILLED" and "SLURM started job" in first.data.tags["lenet.superseded"]
    assert second.info.status == "FINISHED" and first.data.tags["slurm.job_id"] == second.data.tags["slurm.job_id"]
    parent, _ = the_sweep(runs_dir)
    assert parent.info.status == "FINISHED"
    assert client_of(runs_dir).get_run(parent.info.run_id).data.metrics["runs_total"] == 1  # one run for one config


def test_a_job_past_its_slurm_time_limit_is_one_line_and_its_run_ends_killed(cluster, runs_dir):
    # A 2-minute limit that SLURM warns of 20 s ahead (signal_delay_s): the job waits at its second epoch past it.
    # Once it waits, its limit is cut to 1 minute (as an admin may: scontrol update TimeLimit), so that SLURM's
    # warning comes at its next check rather than up to 100 s into the job.
    proc = start_sweep(runs_dir, "model=classic", "trainer.epochs=3", "hydra.launcher.timeout_min=2",
                       "hydra.launcher.signal_delay_s=20", "model._target_=tests.support.faults.waiting_lenet",
                       f"+model.marker={runs_dir}/waiting", "+model.wait_s=300")
    deadline = time.monotonic() + 120
    while not (runs_dir / "waiting").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    (job_id,) = queue()
    limit = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%l"], capture_output=True, text=True).stdout
    assert limit.strip() == "2:00"  # what the sweep asked for reached SLURM
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "TimeLimit=1"], capture_output=True, check=True)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1 and "Traceback" not in output, output
    said = [line.split("] ")[-1] for line in output.splitlines() if "time limit" in line]
    assert said == ["classic+adam: stopped by SLURM at its time limit (hydra.launcher.timeout_min=2); raise "
                    "hydra.launcher.timeout_min"], output
    (run_,) = runs_in(runs_dir)
    assert run_.info.status == "KILLED" and run_.data.tags["lenet.outcome"] == "killed"
    assert "time limit" in run_.data.tags["error.message"]
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FAILED" and queue() == []


# Hydra's own contract suites for launchers (hydra.test_utils.launcher_common_tests) against the project's SLURM
# launcher, as tests/commands/test_hydra_contracts.py runs them against its joblib one: each of the suites' sweeps
# is a SLURM array job whose tasks run Hydra's trivial task functions and test apps on the node. The project's
# launcher is named, whatever a plugin scan registered, with the README's CPU-partition settings and the queue
# read often (these jobs take a second).
OURS = ["hydra.launcher._target_=hydra_plugins.lenet_sweeps.SlurmLauncher", *CPU_PARTITION[1:],
        "hydra.launcher.poll_s=0.3"]


@pytest.fixture
def the_projects_slurm_launcher(cluster, hydra_restore_singletons, monkeypatch):
    """hydra/launcher=lenet_slurm is the project's for a suite's test (Hydra's singletons restored after), and a
    test app's own process finds it where the checkout's hydra_plugins/ is on its path (the README's advice: an
    editable install's import hook hides it from Hydra's plugin scan)."""
    register_plugins()
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))


@pytest.mark.usefixtures("the_projects_slurm_launcher")
@pytest.mark.parametrize("launcher_name, overrides", [("lenet_slurm", OURS)])
class TestTheProjectsSlurmLauncher(LauncherTestSuite):
    pass


@pytest.mark.usefixtures("the_projects_slurm_launcher")
@pytest.mark.parametrize("launcher_name, overrides", [("lenet_slurm", [*OURS, *BATCHES_OF_2])])
class TestTheProjectsSweeperInBatchesOnSlurm(BatchedSweeperTestSuite):  # each batch its own array job
    pass


@pytest.mark.usefixtures("the_projects_slurm_launcher")
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [({}, integration_flags("lenet_slurm", *OURS))])
class TestTheProjectsSlurmLauncherIntegration(IntegrationTestSuite):
    pass
