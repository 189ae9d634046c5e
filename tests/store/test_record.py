"""The record's writers meeting at the worst moment, put there on purpose: another job or sweep lands exactly in
the gap between MLflow's lookup and its insert; the store refuses a write while a sweep opens its record."""
import contextlib
import sqlite3
from contextlib import contextmanager

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import event

from experiments.config import compose_with_hydra
from experiments.errors import Abort
from experiments.record.runs import RunLog, tracked_run
from experiments.record.session import scope
from experiments.record.store import connect, get_or_create, store_template, synchronous_normal
from experiments.sweep import SweepCallback

from ..support.store import runs_in


@contextmanager
def lands_first(client, table: str, other_writer):
    """Runs other_writer once, just before client's first INSERT INTO table: in the gap between MLflow's
    lookup and its insert, where a job or sweep started at the same moment lands. Yields [what it returned]."""
    engine = client._tracking_client.store.engine
    landed = []

    def hook(conn, cursor, statement, *args):
        if statement.startswith(f"INSERT INTO {table}") and not landed:
            landed.append("its own insert fires this hook too")
            landed[0] = other_writer()

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield landed
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    assert landed, f"the other writer never landed between lookup and INSERT INTO {table}"


def test_jobs_logging_the_same_dataset_at_once_both_keep_it(runs_dir):
    # MLflow looks a dataset up, then inserts it if missing; a job doing the same in between makes the insert
    # hit the store's unique constraint (seen with 4 joblib jobs). Here the other job lands in exactly that gap.
    tracking = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    other = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    dataset = dict(name="mnist5k", digest="4d7258d2", source={}, schema={}, profile={})

    def other_job():
        with tracked_run(other, "other job", {"lenet.role": "job"}, runs_dir) as run:
            run.dataset(**dataset)

    with lands_first(tracking.client, "datasets", other_job):
        with tracked_run(tracking, "job", {"lenet.role": "job"}, runs_dir) as run:
            run.dataset(**dataset)
    finished = runs_in(runs_dir)
    assert sorted(r.info.status for r in finished) == ["FINISHED", "FINISHED"]
    assert [[d.dataset.digest for d in r.inputs.dataset_inputs] for r in finished] == [["4d7258d2"]] * 2


def test_sweeps_creating_the_experiment_at_once_both_get_it(runs_dir):
    # On a server or PostgreSQL (no file lock): two sweeps starting on a new store both find no experiment
    # and both create it. Here the other sweep's create lands between this one's lookup and its insert.
    client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
    other_sweep = lambda: get_or_create(MlflowClient(f"sqlite:///{runs_dir}/mlflow.db"), "lenet-sweeps", None)
    with lands_first(client, "experiments", other_sweep) as landed:
        tracking = get_or_create(client, "lenet-sweeps", None)
    assert tracking.experiment_id == landed[0].experiment_id
    assert [e.name for e in client.search_experiments()] == ["lenet-sweeps", "Default"]


def test_a_failure_while_starting_the_sweeps_record_stops_it_in_one_line_and_ends_its_parent(runs_dir, monkeypatch):
    # Hydra only warns when a callback raises, then launches the jobs: here they would run with no parent to join.
    cfg = compose_with_hydra([f"runs_dir={runs_dir}"])

    def refused(run, tags):
        raise MlflowException("the store refused the write")

    monkeypatch.setattr(RunLog, "tags", refused)  # the parent run exists by the time its tags are written
    with pytest.raises(Abort) as stopped:
        SweepCallback().on_multirun_start(cfg)
    assert str(stopped.value) == "the sweep could not start its MLflow record: MlflowException: the store " \
                                 "refused the write"
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FAILED"  # not left RUNNING with no process behind it


def test_an_open_sweep_keeps_room_beside_its_store_and_a_parent_it_cannot_end_fails_the_command(runs_dir, monkeypatch,
                                                                                                  caplog):
    cfg = compose_with_hydra([f"runs_dir={runs_dir}"])
    with scope() as session:
        sweep = SweepCallback()
        sweep.on_multirun_start(cfg)
        assert sweep.room.stat().st_size == 256 * 1024 and sweep.room.parent == runs_dir / "mlflow.db.sweeps"

        def refused(run, status):
            raise MlflowException("(sqlite3.OperationalError) database or disk is full")

        monkeypatch.setattr(RunLog, "end", refused)
        sweep.on_multirun_end(cfg)
    (said,) = [r.getMessage() for r in caplog.records if "could not be ended" in r.getMessage()]
    assert f"no space left on device for the MLflow store sqlite:///{runs_dir}/mlflow.db" in said
    assert session.unended == runs_in(runs_dir, "sweep")[0].info.run_id  # the run command exits 1
    assert not sweep.room.exists()  # given back before the end was tried


def schema(store) -> tuple:
    """Each table's and index's definition, its clauses in any order (MLflow's own migrations order a table's
    constraints differently from one creation to the next), and the schema version."""
    with contextlib.closing(sqlite3.connect(store)) as db:
        found = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        tables = sorted((name, sorted(line.strip().rstrip(",") for line in sql.splitlines())) for name, sql in found)
        return tables, db.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_new_store_is_a_copy_of_mlflows_own_empty_store_made_once_per_machine(tmp_path, monkeypatch, empty_store):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = connect(f"sqlite:///{tmp_path}/a/mlflow.db", "lenet-sweeps")
    template = store_template()
    made = template.stat().st_mtime_ns
    second = connect(f"sqlite:///{tmp_path}/b/mlflow.db", "lenet-sweeps")
    assert template.stat().st_mtime_ns == made  # made once, copied since
    assert schema(tmp_path / "b" / "mlflow.db") == schema(empty_store)  # as MLflow's own creation made it
    default = second.client.get_experiment("0")  # MLflow's Default experiment, as MLflow would have made it
    assert default.name == "Default" and str(template.parent) not in default.artifact_location
    for tracking, where in ((first, "a"), (second, "b")):
        run = tracking.client.create_run(tracking.experiment_id)
        tracking.client.set_terminated(run.info.run_id)
        assert run.info.artifact_uri.startswith((tmp_path / where / "mlartifacts").as_uri())


def test_without_a_writable_cache_mlflow_creates_the_store_as_usual(tmp_path, monkeypatch, empty_store):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    tracking = connect(f"sqlite:///{tmp_path}/runs/mlflow.db", "lenet-sweeps")
    assert tracking.client.get_experiment(tracking.experiment_id).name == "lenet-sweeps"
    assert schema(tmp_path / "runs" / "mlflow.db") == schema(empty_store)


def test_a_memory_cap_that_refuses_the_summarys_imports_still_ends_the_sweep_in_one_line(runs_dir, monkeypatch, caplog):
    import sys

    class Refused:  # what an import under `ulimit -v` meets: the allocation for the statistics' modules fails
        def find_spec(self, name, path=None, target=None):
            if name == "experiments.analysis.report":
                raise MemoryError
            return None

    monkeypatch.delitem(sys.modules, "experiments.analysis.report", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refused(), *sys.meta_path])
    cfg = compose_with_hydra([f"runs_dir={runs_dir}"])
    with scope() as session:
        sweep = SweepCallback()
        sweep.on_multirun_start(cfg)
        sweep.on_multirun_end(cfg)  # raised MemoryError out of the sweep's end before: a traceback, exit 1
    (parent,) = runs_in(runs_dir, "sweep")
    assert parent.info.status == "FINISHED"
    assert session.summary.startswith("(summary not written: MemoryError") and "experiments.export redoes it" in \
        session.summary


def test_a_command_that_runs_out_of_memory_says_so_in_one_line(capsys):
    from experiments import cli

    def main(argv):
        raise MemoryError

    assert cli.one_line_errors(main)([]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: out of memory: this process hit its memory limit; raise it (ulimit -v")


def test_a_local_stores_commits_skip_their_own_fsync_in_wal_mode_only(tmp_path):
    # what SQLite's documentation gives for WAL: a killed process loses no commit, a power cut only the last ones
    uri = f"sqlite:///{tmp_path}/runs/mlflow.db"
    connect(uri, "lenet-sweeps")
    engine = MlflowClient(uri)._tracking_client.store.engine  # the one every client of this URI shares
    with engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert db.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL (FULL is 2)
    rollback = tmp_path / "rollback.db"
    with contextlib.closing(sqlite3.connect(rollback)) as db:
        db.execute("CREATE TABLE t (a)")
    with contextlib.closing(sqlite3.connect(rollback)) as db:
        synchronous_normal(db, None)  # a store on a file system without WAL keeps its fsyncs
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
