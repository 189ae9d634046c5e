"""A job's threads fit the cores it gets (experiments.cores): its affinity and its cgroup's CPU quota, split among
the jobs running at once; idle OpenMP threads sleep, set before torch loads, unless the user says otherwise."""
import os
import subprocess
import sys

import pytest

from experiments import cores


def cgroup_v2(tmp_path, cpu_max: str):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


@pytest.mark.parametrize("cpu_max, quota", [("max 100000", None), ("200000 100000", 2), ("150000 100000", 1),
                                             ("50000 100000", 1), ("400000 50000", 8)])
def test_a_cgroup_quota_is_read_in_whole_cores(tmp_path, cpu_max, quota):
    assert cores.cpu_quota(cgroup_v2(tmp_path, cpu_max)) == quota


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    (tmp_path / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert cores.cpu_quota(tmp_path) == 3
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    assert cores.cpu_quota(tmp_path) is None
    assert cores.cpu_quota(tmp_path / "absent") is None


def test_usable_cores_are_the_affinity_capped_by_the_quota(tmp_path):
    mine = len(os.sched_getaffinity(0))
    assert cores.usable_cores(cgroup_v2(tmp_path, "max 100000")) == mine
    assert cores.usable_cores(cgroup_v2(tmp_path, "100000 100000")) == 1  # a container given --cpus=1
    assert cores.usable_cores(cgroup_v2(tmp_path, f"{(mine + 5) * 100000} 100000")) == mine


def test_threads_split_among_the_jobs_running_at_once(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(cores, "usable_cores", lambda cgroup=None: 8)
    try:
        assert [cores.share_cores(n) for n in (None, 1, 2, 3, 16, -1)] == [8, 8, 4, 2, 1, 1]
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
        assert cores.share_cores(2) == 3 and torch.get_num_threads() == 3  # SLURM's grant
    finally:
        torch.set_num_threads(before)


WAIT_POLICY = "import experiments, os; print(os.environ.get('OMP_WAIT_POLICY', '-'))"


@pytest.mark.parametrize("env, policy", [({"LENET_IDLE_THREADS": "sleep"}, "PASSIVE"),
                                         ({"LENET_IDLE_THREADS": "spin"}, "-"),
                                         ({"OMP_WAIT_POLICY": "ACTIVE", "LENET_IDLE_THREADS": "sleep"}, "ACTIVE"),
                                         ({"LENET_PROCESS_TUNING": "0", "LENET_IDLE_THREADS": "sleep"}, "-")])
def test_idle_threads_sleep_where_asked_unless_the_user_set_a_policy(env, policy):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LENET_IDLE_THREADS",
                                                               "LENET_PROCESS_TUNING")}
    out = subprocess.run([sys.executable, "-c", WAIT_POLICY], env=clean | env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [policy]


def test_auto_sleeps_only_where_the_load_already_fills_the_cores():
    assert not cores.should_sleep("auto", 0.6, 2) and cores.should_sleep("auto", 3.1, 2)  # a quiet laptop; a CI runner
    assert cores.should_sleep("auto", 2.0, 2) and not cores.should_sleep("auto", 7.5, 16)
    assert cores.should_sleep("sleep", 0.0, 2) and not cores.should_sleep("spin", 30.0, 2)


def test_an_unknown_setting_is_one_line_naming_the_choices(monkeypatch):
    from experiments.errors import BadInput
    from experiments.validate import check_command

    monkeypatch.setenv("LENET_IDLE_THREADS", "nap")
    with pytest.raises(BadInput, match=r"^LENET_IDLE_THREADS='nap' is not one of auto, sleep, spin$"):
        check_command(["model=d2l"])


def test_the_wait_policy_is_left_alone_once_torch_is_loaded():
    # OpenMP read its environment when torch loaded: setting it afterwards would only mislead a reader of os.environ
    code = "import os, torch, experiments; print(os.environ.get('OMP_WAIT_POLICY', '-'))"
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True,
                          check=True).stdout.split() == ["-"]
