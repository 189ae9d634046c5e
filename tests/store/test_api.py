"""A sweep is a value: experiments.run_sweep, called again and again in one interpreter as a notebook calls it,
gets the command's record, checks and errors each time, and leaves nothing behind for the next call."""
import logging
import shutil
import signal
import threading

import pytest

from experiments import run_sweep
from experiments.analysis.results import NAMES
from experiments.errors import BadInput
from experiments.record import provenance

from ..support.store import client_of, every_run, runs_in

TINY = ["trainer.epochs=1", "trainer.limit_batches=2", "mlflow.log_model=false", "trainer.progress=lines"]
MAIN = ["model=classic,d2l", "optim=sgd,adam"]


def threads(before=()) -> set[str]:
    """The harness's threads alive now that were not in before (an earlier test of this worker process may have
    left the process's own heartbeat running: tests that call tracked_run outside a sweep)."""
    return {t.name for t in threading.enumerate() if t.name.startswith("lenet-") and t not in before}


def test_two_sweeps_in_one_process_each_land_whole_and_leave_nothing_running(runs_dir):
    before_signals, before_threads = signal.getsignal(signal.SIGINT), set(threading.enumerate())
    root = logging.getLogger()
    before_logging = (root.handlers[:], root.level)
    first = run_sweep([*MAIN, *TINY, f"runs_dir={runs_dir}"])
    second = run_sweep([*MAIN, *TINY, "seed=1", f"runs_dir={runs_dir}"])
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert first.sweep_id != second.sweep_id and first.parent_run_id != second.parent_run_id
    parents = runs_in(runs_dir, "sweep")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]
    for result in (first, second):
        children = [r for r in runs_in(runs_dir) if r.data.tags["mlflow.parentRunId"] == result.parent_run_id]
        assert len(children) == 4 and len(result.runs) == 4
        assert set(result.runs["run_id"]) == {r.info.run_id for r in children}
        assert list(result.runs.columns) == NAMES
        assert len(result.summary.splitlines()) <= 15 and "Failed: " in result.summary  # one screen (4 batches)
        assert result.full_summary.startswith("# sweep ") and "Recipes (every swept value but the seed" in \
            result.full_summary
    assert set(second.runs["seed"]) == {1}
    assert "RUNNING" not in {r.info.status for r in every_run(runs_dir)}
    assert threads(before_threads) == set()  # the heartbeat and the writer stopped with their sweep
    assert signal.getsignal(signal.SIGINT) is before_signals  # the caller's own Ctrl-C handling is back
    # and its logging: not the last job's log file, nor a console handler on a stream that may be gone
    assert (root.handlers, root.level) == before_logging
    assert {"classic+adam", "d2l+adam"} <= set(second.cells["cell"])
    assert not second.history("val_acc").empty


def test_bad_input_raises_the_commands_one_line_and_writes_nothing(runs_dir):
    store = (runs_dir / "mlflow.db").read_bytes()
    with pytest.raises(BadInput, match=r"^unknown model 'lenet7'; choose one of: classic, d2l$"):
        run_sweep(["model=lenet7", f"runs_dir={runs_dir}"])
    assert (runs_dir / "mlflow.db").read_bytes() == store and not (runs_dir / "hydra").exists()
    assert run_sweep(["model=d2l", *TINY, f"runs_dir={runs_dir}"]).exit_code == 0  # the next call is unaffected


def test_a_store_deleted_between_two_sweeps_is_made_again_and_holds_the_second(runs_dir, tmp_path):
    first = run_sweep(["model=d2l", *TINY, f"runs_dir={runs_dir}"])
    reader = client_of(runs_dir)  # the user's own client, as a notebook keeps one
    assert len(reader.search_runs([reader.get_experiment_by_name("lenet-sweeps").experiment_id])) == 2
    shutil.rmtree(runs_dir)  # rm -r runs/ between two cells
    second = run_sweep(["model=d2l", *TINY, f"runs_dir={runs_dir}"])
    assert second.exit_code == 0 and second.parent_run_id != first.parent_run_id
    assert [r.info.run_id for r in runs_in(runs_dir, "sweep")] == [second.parent_run_id]  # in the new file


def test_ctrl_c_in_a_sweep_ends_it_killed_and_the_interpreter_goes_on(runs_dir):
    interrupted = run_sweep(["model=classic,d2l", *TINY, "trainer.epochs=2",
                             f"runs_dir={runs_dir}", "model._target_=tests.support.faults.signalling_lenet",
                             "+model.signal_name=SIGINT", f"+model.tally={runs_dir}/signals"])
    assert interrupted.exit_code == 130 and "Not counted: classic 1 interrupted" in interrupted.summary
    assert list(interrupted.runs["outcome"]) == ["interrupted"]
    (job,) = runs_in(runs_dir)
    assert job.info.status == runs_in(runs_dir, "sweep")[0].info.status == "KILLED"
    resumed = run_sweep(["model=classic,d2l", *TINY, "trainer.epochs=2",
                         f"runs_dir={runs_dir}", "model._target_=tests.support.faults.signalling_lenet",
                         "+model.signal_name=SIGINT", f"+model.tally={runs_dir}/signals"])
    assert resumed.exit_code == 0 and resumed.parent_run_id == interrupted.parent_run_id  # the same sweep, resumed
    assert sorted(resumed.runs["status"]) == ["FINISHED", "FINISHED", "KILLED"]
    assert list(resumed.runs["counted"]).count(True) == 2  # the KILLED attempt is superseded


def test_a_single_run_returns_its_row(runs_dir):
    result = run_sweep(["model=d2l", *TINY, f"runs_dir={runs_dir}"], multirun=False)
    assert result.exit_code == 0 and result.parent_run_id is None
    (row,) = result.runs.to_dict("records")
    assert (row["status"], row["cell"], row["trainer.epochs"]) == ("FINISHED", "d2l+adam", 1)


def test_library_code_edited_after_import_is_refused_until_reloaded(tmp_path, monkeypatch, runs_dir):
    import importlib.util
    import sys

    library = tmp_path / "lenet"
    library.mkdir()
    (library / "edited.py").write_text("def layer():\n    return 1\n")
    spec = importlib.util.spec_from_file_location("lenet.edited", library / "edited.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "lenet.edited", module)
    monkeypatch.setattr(provenance, "LIBRARY", library)
    monkeypatch.setattr(provenance, "LOADED", {})
    assert provenance.edited_since_import() == []  # as imported
    (library / "edited.py").write_text("def layer():\n    return 2  # edited in the notebook's editor\n")
    with pytest.raises(BadInput, match=r"^lenet/edited.py changed after this Python process imported it"):
        run_sweep(["model=d2l", *TINY, f"runs_dir={runs_dir}"])
    spec.loader.exec_module(module)  # importlib.reload's work: the module now runs the file's code
    assert provenance.edited_since_import() == []


def test_a_sweep_composes_each_jobs_config_once_and_launches_each_with_its_own(runs_dir, monkeypatch):
    """Hydra composes every job to check the batch, then again to launch it (0.15-0.18 s each on 2 cores): the
    project's basic sweeper hands the launcher the first."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    compose = ConfigLoaderImpl.load_sweep_config

    def counted(self, master_config, sweep_overrides):
        composed.append(tuple(sweep_overrides))
        return compose(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    result = run_sweep(["model=classic,d2l", "optim=adam", *TINY, f"runs_dir={runs_dir}"])
    assert result.exit_code == 0
    assert len(composed) == 2 and len(set(composed)) == 2  # one composition per job
    runs = {r.data.params["model"]: r for r in runs_in(runs_dir)}
    assert set(runs) == {"classic", "d2l"}
    assert {r.data.tags["hydra.job_num"] for r in runs.values()} == {"0", "1"}  # each launched as its own job
    assert {r.data.params["input_size"] for r in runs.values()} == {"32", "28"}
