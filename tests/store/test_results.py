"""The one results table every answer reads, from records a real store holds: which run of a config counts (the
newest that ended), what a run came to (its final MLflow status first), and one schema in every format."""
import math
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from experiments.analysis.results import COLUMNS, read_runs
from experiments.config import PROJECT_ROOT
from experiments.record.runs import tracked_run
from experiments.record.store import connect

from ..services import unavailable
from ..support.record import Record


def test_a_rerun_after_a_code_edit_answers_with_the_new_run_and_names_the_old(runs_dir, capsys):
    record = Record(runs_dir)
    old = record.job("d2l", "adam", acc=0.245, code="before-the-edit")
    new = record.job("d2l", "adam", acc=0.239, code="after-the-edit")
    record.job("classic", "adam", acc=0.97)
    record.end()
    printed, folder = record.export(capsys, "csv")
    runs = read_runs(folder / "runs.csv").set_index("run_id")
    assert len(runs) == 3  # the old run stays in the table...
    assert not runs.loc[old, "counted"] and runs.loc[new, "counted"]
    assert (runs.loc[old, "superseded_by"], runs.loc[old, "superseded_why"]) == (new, "other library code")
    pivot = pd.read_csv(folder / "pivot.csv").set_index("model")
    assert pivot.loc["d2l", "adam"] == pytest.approx(0.239)  # ...and in no number of the answer
    cells = pd.read_csv(folder / "cells.csv").set_index("cell")
    assert cells.loc["d2l+adam", "runs"] == 1 and cells.loc["d2l+adam", "test_acc_mean"] == pytest.approx(0.239)
    assert "0.2450" not in printed and "0.2390" in printed
    assert "1 older run superseded by a newer run of its config (other library code: 1): in runs.csv" in printed
    parent = record.client.get_run(record.parent)
    assert parent.data.metrics["runs_total"] == 2 and parent.data.metrics["runs_superseded"] == 1
    assert parent.data.tags["lenet.best_cell"] == "classic+adam"
    marked = record.client.get_run(old).data.tags  # the saved view leaves it out by this tag
    assert (marked["lenet.superseded"], marked["lenet.superseded_by"]) == ("other library code", new)
    again, folder = record.export(capsys, "csv")  # read again with the marks on: the same decision
    assert read_runs(folder / "runs.csv").set_index("run_id").loc[old, "superseded_why"] == "other library code"


@pytest.mark.parametrize("first, tags, why", [
    ("FINISHED", {}, "resume=false"),  # the same code, a FINISHED run with its files: only resume=false retrains it
    ("FAILED", {}, "trained again after it ended FAILED"),  # a resumed sweep's retry
    ("KILLED", {"lenet.superseded": "SLURM started job 7 again (restart 1)"}, "a requeued attempt"),
])
def test_every_superseded_run_says_by_which_run_and_why(runs_dir, capsys, first, tags, why):
    record = Record(runs_dir, swept=["model"])
    old = record.job("classic", status=first, acc=0.5 if first == "FINISHED" else math.nan, tags=tags)
    new = record.job("classic", acc=0.9)
    record.end()
    _, folder = record.export(capsys, "csv")
    runs = read_runs(folder / "runs.csv").set_index("run_id")
    assert list(runs["counted"]) == [False, True]
    assert (runs.loc[old, "superseded_by"], runs.loc[old, "superseded_why"]) == (new, why)
    assert pd.read_csv(folder / "cells.csv")["runs"].tolist() == [1]


def test_a_requeued_attempt_never_counts_even_while_its_successor_runs(runs_dir, capsys):
    record = Record(runs_dir, swept=["model"])
    old = record.job("classic", status="KILLED", acc=math.nan, tags={"lenet.superseded": "SLURM requeued it"})
    running = record.job("classic", status="RUNNING", acc=math.nan)
    _, folder = record.export(capsys, "csv")  # the sweep still runs: the export says what it has so far
    runs = read_runs(folder / "runs.csv").set_index("run_id")
    assert runs.loc[old, "superseded_by"] == running and runs.loc[running, "outcome"] == "running"
    cells = pd.read_csv(folder / "cells.csv")
    assert (cells["counted"].tolist(), cells["running"].tolist(), cells["killed"].tolist()) == ([0], [1], [0])


def test_a_run_that_did_not_end_finished_is_never_ok_nor_the_best(runs_dir, capsys):
    # A job that trained well, then could not write its files (a full disk): FAILED, though its tag said ok.
    record = Record(runs_dir)
    lost = record.job("classic", "adam", status="FAILED", acc=0.99, tags={"lenet.outcome": "ok"})
    record.job("d2l", "adam", acc=0.93)
    record.end("FAILED")
    printed, folder = record.export(capsys, "csv")
    runs = read_runs(folder / "runs.csv").set_index("run_id")
    assert (runs.loc[lost, "status"], runs.loc[lost, "outcome"]) == ("FAILED", "failed")
    assert "Best recipe: d2l+adam" in printed and "Best recipe: classic+adam" not in printed
    cells = pd.read_csv(folder / "cells.csv").set_index("cell")
    assert cells.loc["classic+adam", "failed_runs"] == 1 and cells.loc["classic+adam", "n"] == 0
    assert record.client.get_run(lost).data.tags["lenet.outcome"] == "failed"  # the record agrees
    assert record.client.get_run(record.parent).data.tags["lenet.best_cell"] == "d2l+adam"


def test_a_run_stopped_before_its_params_is_named_by_the_overrides_it_was_launched_with(runs_dir, capsys):
    # Seen with submitit: Ctrl-C reached a job between its run's creation and its params, and the summary said
    # "Not counted: classic 1 interrupted; nan 1 interrupted", with a recipe row named nan.
    record = Record(runs_dir)
    record.job("classic", "adam", status="KILLED", acc=math.nan)
    bare = record.stopped_at_start("model=d2l +model.signal_name=SIGINT optim=adam runs_dir=/somewhere seed=3")
    record.end("KILLED")
    said = record.brief()
    assert "Not counted: classic+adam 1 interrupted; d2l+adam 1 interrupted" in said, said
    assert "nan" not in said
    printed, folder = record.export(capsys, "csv")
    runs = read_runs(folder / "runs.csv").set_index("run_id")
    assert (runs.loc[bare, "cell"], runs.loc[bare, "model"], runs.loc[bare, "optim"]) == ("d2l+adam", "d2l", "adam")
    assert runs.loc[bare, "seed"] == 3 and pd.isna(runs.loc[bare, "data"])  # what it was launched with, no more
    assert "nan" not in printed


def test_a_run_ended_failed_after_its_training_said_ok_records_failed(runs_dir):
    tracking = connect(f"sqlite:///{runs_dir}/mlflow.db", "lenet-sweeps")
    with pytest.raises(OSError):
        with tracked_run(tracking, "classic+adam", {"lenet.role": "job"}, runs_dir / "out") as run:
            run.outcome_tag = "ok"  # what its test accuracy earned
            raise OSError(28, "No space left on device")  # then its files could not be written
    ended = tracking.client.get_run(run.run_id)
    assert (ended.info.status, ended.data.tags["lenet.outcome"]) == ("FAILED", "failed")


def test_a_sweep_of_one_recipe_names_it_instead_of_ranking_all_runs(runs_dir, capsys):
    record = Record(runs_dir, swept=[])
    record.job("classic", "adam", acc=0.974)
    record.end()
    printed, _ = record.export(capsys, "csv")
    assert "classic+adam: test accuracy 0.9740 (one run; 95% Wilson, 1,000 test images: " in printed
    assert "all runs" not in printed and "Best recipe" not in printed


def mixed_sweep(runs_dir) -> Record:
    """Every kind of row: a superseded run, a diverged one (no test metrics), sgd's momentum beside adam's none."""
    record = Record(runs_dir)
    record.job("classic", "adam", acc=0.5, code="old")
    record.job("classic", "adam", acc=0.97, code="new")
    record.job("classic", "sgd", status="FAILED", acc=math.nan, tags={"lenet.diverged": "1"},
               params={"optim.momentum": 0.0})
    record.job("d2l", "sgd", acc=0.11, params={"optim.momentum": 0.0})  # collapsed
    record.job("d2l", "adam", status="KILLED", acc=math.nan, tags={"lenet.closed": "its process was gone"})
    record.end("FAILED")
    return record


def kind(dtype) -> str:
    api = pd.api.types
    return "bool" if api.is_bool_dtype(dtype) else "int" if api.is_integer_dtype(dtype) else \
        "float" if api.is_float_dtype(dtype) else "string" if api.is_string_dtype(dtype) else str(dtype)


def test_the_runs_table_has_one_column_per_fact_and_the_same_types_in_every_format(runs_dir, capsys):
    _, folder = mixed_sweep(runs_dir).export(capsys, "csv", "parquet", "json", "md", "latex")
    schema = {c.name: c.kind for c in COLUMNS}
    written = read_runs(folder / "runs.parquet")
    assert list(written.columns) == list(schema)  # one name per fact: no lr beside optim.lr, no outcome_tag
    assert {name: kind(written[name].dtype) for name in written} == schema
    assert list(written["status"]) == ["FINISHED", "FINISHED", "FAILED", "FINISHED", "KILLED"]  # MLflow's states
    assert list(written["outcome"]) == ["ok", "ok", "diverged", "collapsed", "killed"]
    for fmt in ("csv", "json"):
        pd.testing.assert_frame_equal(read_runs(folder / f"runs.{fmt}"), written)  # exactly, types and values
    plain = {"csv": pd.read_csv(folder / "runs.csv"), "json": pd.read_json(folder / "runs.json"),
             "parquet": pd.read_parquet(folder / "runs.parquet")}  # pandas alone, no schema
    for fmt, table in plain.items():
        assert list(table.columns) == list(schema), fmt
        for name, want in schema.items():
            if written[name].notna().any():  # a column with no value at all has no type to keep
                got = kind(table[name].dtype)
                assert got == want or {got, want} == {"int", "float"} and fmt != "parquet", (fmt, name, got)
    assert pd.isna(written.set_index("outcome").loc["diverged", "test_acc"])  # missing, not "nan" or 0
    md = (folder / "runs.md").read_text().splitlines()
    assert [c.strip() for c in md[0].strip("|").split("|")] == list(schema)
    latex = (folder / "runs.latex").read_text()
    header = latex.split("\\toprule\n")[1].split("\\\\")[0]
    assert [c.strip().replace("\\_", "_") for c in header.split("&")] == list(schema)
    assert "nan" not in latex.lower().replace("\\_", "_").replace("mnist5k", "") and " - " in latex


def test_the_readme_documents_every_column_of_the_runs_table():
    readme = (PROJECT_ROOT / "README.md").read_text()
    documented = re.findall(r"^\| `([^`]+)` \| (string|int|float|bool) \|", readme, flags=re.M)
    assert [name for name, _ in documented] == [c.name for c in COLUMNS]
    assert [k for _, k in documented] == [c.kind for c in COLUMNS]


DOCUMENT = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage[landscape,margin=1cm]{geometry}
\begin{document}
\tiny
\input{TABLE}
\end{document}
"""


def test_every_exported_latex_table_compiles_with_pdflatex(runs_dir, capsys, tmp_path):
    if shutil.which("pdflatex") is None:
        unavailable("pdflatex is not installed here (apt-get install texlive-latex-base texlive-latex-recommended)")
    record = mixed_sweep(runs_dir)
    for seed in (1, 2):  # enough seeds for tests, comparisons and the factorial model's tables
        for model, optim in (("classic", "adam"), ("classic", "sgd"), ("d2l", "adam"), ("d2l", "sgd")):
            record.job(model, optim, seed, acc=0.9 + 0.01 * seed + (0.05 if optim == "adam" else 0))
    _, folder = record.export(capsys, "latex")
    tables = sorted(folder.glob("*.latex"))
    assert {t.stem for t in tables} >= {"runs", "pivot", "cells", "comparisons", "effects"}
    for table in tables:
        doc = tmp_path / f"{table.stem}.tex"
        doc.write_text(DOCUMENT.replace("TABLE", str(table)))
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "TEXINPUTS": ".:"})
        assert proc.returncode == 0, f"{table.name}:\n{proc.stdout[-2000:]}"
        assert (tmp_path / f"{table.stem}.pdf").stat().st_size > 0
