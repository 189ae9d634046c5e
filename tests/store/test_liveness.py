"""Dead runs are told from live ones: closed KILLED with the reason, live ones never touched."""
import subprocess
import sys
import time

from experiments.record.liveness import close_stale_runs, gone, me
from experiments.record.schema import CLOSED, HEARTBEAT, OWNER
from experiments.record.store import connect


def test_this_process_is_alive_and_a_finished_process_is_gone():
    assert gone({OWNER: me()}, 0, timeout_s=1) is None
    child = subprocess.run([sys.executable, "-c", "from experiments.record.liveness import me; print(me())"],
                           capture_output=True, text=True, check=True)
    dead = child.stdout.strip()
    assert "is no longer running" in gone({OWNER: dead}, 0, timeout_s=1e9)
    host, pid, start = me().split(":")
    reused = f"{host}:{pid}:{int(start) - 1}"  # this pid, but a process that started at another time
    assert "now belongs to another process" in gone({OWNER: reused}, 0, timeout_s=1e9)


def test_a_run_of_another_host_is_gone_when_its_heartbeat_is_old():
    now = time.time()
    other = {OWNER: "elsewhere:42:1000"}
    assert gone({**other, HEARTBEAT: str(now - 30)}, 0, timeout_s=600, now=now) is None
    assert "no heartbeat from process 42 on elsewhere since" in gone({**other, HEARTBEAT: str(now - 601)}, 0,
                                                                       timeout_s=600, now=now)
    assert gone({}, start_ms=(now - 60) * 1000, timeout_s=600, now=now) is None  # an older version's run
    assert "recorded by an older version" in gone({}, start_ms=(now - 700) * 1000, timeout_s=600, now=now)


def test_closing_stale_runs_closes_only_the_dead_ones(runs_dir):
    client, experiment_id = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    dead = subprocess.run([sys.executable, "-c", "from experiments.record.liveness import me; print(me())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    now = time.time()
    owners = {"live here": {OWNER: me()}, "dead here": {OWNER: dead},
              "live elsewhere": {OWNER: "elsewhere:7:1", HEARTBEAT: str(now - 10)},
              "silent elsewhere": {OWNER: "elsewhere:8:1", HEARTBEAT: str(now - 3600)}}
    ids = {name: client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
           for name, tags in owners.items()}
    finished = client.create_run(experiment_id, run_name="finished", tags={OWNER: dead}).info.run_id
    client.set_terminated(finished, "FINISHED")

    closed = close_stale_runs(client, experiment_id, timeout_s=600)
    assert sorted(closed) == sorted([ids["dead here"], ids["silent elsewhere"]])
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"live here": "RUNNING", "dead here": "KILLED", "live elsewhere": "RUNNING",
                      "silent elsewhere": "KILLED"}
    reason = client.get_run(ids["dead here"]).data.tags[CLOSED]
    assert "is no longer running; closed KILLED at 20" in reason and me() in reason
    assert client.get_run(finished).info.status == "FINISHED"


def test_a_run_closed_by_another_process_between_two_epochs_gets_no_more_writes(runs_dir):
    # A pause shorter than the heartbeat interval, during which another host's sweep closed the run: the next
    # epoch's check must see it (it used to be skipped for one interval after the last check: one write more).
    from mlflow.tracking import MlflowClient

    from experiments.record.liveness import close_killed
    from experiments.record.runs import ClosedElsewhere, tracked_run

    tracking = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    other = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")  # the other host's sweep
    try:
        with tracked_run(tracking, "classic+adam", {"lenet.role": "job"}, runs_dir / "out") as run:
            run.still_mine()  # epoch 1's check: still this process's
            run.metrics({"train_loss": 1.0}, step=1)
            close_killed(other, other.get_run(run.run_id), "no heartbeat from process 1 on elsewhere")
            run.still_mine()  # epoch 2's check, a moment later
            run.metrics({"train_loss": 0.5}, step=2)
    except ClosedElsewhere:
        pass
    assert [m.step for m in other.get_metric_history(run.run_id, "train_loss")] == [1]
    assert other.get_run(run.run_id).info.status == "KILLED"


def test_a_heartbeat_in_flight_when_its_sweep_ends_writes_nothing_more_and_its_thread_is_gone(runs_dir):
    # A beat that is waiting on a slow store as the sweep ends (seen on a loaded CI machine: the thread outlived
    # stop()'s wait and went on beating runs being ended). Injected: the store's answer to the beat's first read
    # is held until the sweep has asked the heartbeat to stop.
    import threading

    from mlflow.tracking import MlflowClient

    from experiments.record.liveness import Heartbeat

    asked, release = threading.Event(), threading.Event()

    class SlowStore(MlflowClient):
        def get_run(self, run_id):
            if threading.current_thread().name == "lenet-heartbeat" and not asked.is_set():
                asked.set()
                release.wait()
            return super().get_run(run_id)

    client = SlowStore(f"sqlite:///{runs_dir}/mlflow.db")
    experiment = client.create_experiment("lenet-sweeps")
    runs = [client.create_run(experiment).info.run_id for _ in range(3)]
    heartbeat = Heartbeat(interval_s=0.01)
    for run_id in runs:
        heartbeat.add(client, run_id)
    assert asked.wait(30)  # the beat is in the store
    beating = heartbeat._thread
    stopping = threading.Thread(target=heartbeat.stop)
    stopping.start()
    while not heartbeat._stopped.is_set():
        time.sleep(0.001)
    release.set()  # the store answers once the sweep has said stop
    stopping.join(timeout=60)
    assert not beating.is_alive()
    assert [HEARTBEAT in client.get_run(run_id).data.tags for run_id in runs] == [False, False, False]
