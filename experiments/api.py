"""The Python entry: a sweep as a value, made as often as wanted in one interpreter (a notebook, a test).

    from experiments import run_sweep
    result = run_sweep(["model=classic,d2l", "optim=sgd,adam"])   # the words after `python -m experiments.run -m`
    result.runs                # the runs table (analysis.results.COLUMNS), a DataFrame
    print(result.summary)      # what the command prints

Each call gets what the command gets: the same checks (bad input raises BadInput, whose message is the command's
one line, before anything is written), the same record in MLflow, the same summary and exit code. Ctrl-C ends the
sweep as the command's does (the running job's run and the parent KILLED, the summary of what finished) and
returns with exit_code 130; the caller's own Ctrl-C handling is back afterwards. State lives in the call's
session (record.session), closed when it returns: nothing carries to the next call but the datasets already
loaded, keyed by what they are made of.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .errors import Abort, BadInput

__all__ = ["SweepResult", "run_sweep", "BadInput"]


@dataclass
class SweepResult:
    exit_code: int  # the command's: 0 every job FINISHED (or was resumed), 1 a failure, 130/143 a signal
    runs: pd.DataFrame  # the runs table, every attempt (counted says which count)
    summary: str = ""  # the text the command prints at the sweep's end (one screen)
    parent_run_id: str | None = None  # the sweep's parent run (None for a single run)
    sweep_id: str | None = None
    error: str | None = None  # the one line that stopped it, if one did
    tracking_uri: str = ""
    analysis: dict = field(default_factory=dict, repr=False)  # cells, comparisons, pivot, ...: analysis.tables
    full_summary: str = field(default="", repr=False)  # every comparison, the factorial model, the runs (summary.md)

    @property
    def cells(self) -> pd.DataFrame:
        """One row per recipe: its runs, failures, accuracy with its interval and score."""
        return self.analysis.get("cells", pd.DataFrame())

    def history(self, metric: str = "val_acc") -> pd.DataFrame:
        """A per-epoch metric of every run that counts, long: run_name, cell, epoch, value."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        rows = []
        for run in self.runs[self.runs["counted"]].to_dict("records"):
            rows += [{"run_name": run["run_name"], "cell": run["cell"], "epoch": m.step, metric: m.value}
                     for m in client.get_metric_history(run["run_id"], metric)]
        return pd.DataFrame(rows, columns=["run_name", "cell", "epoch", metric])


def run_sweep(overrides: list[str], multirun: bool = True) -> SweepResult:
    """Run the sweep `python -m experiments.run -m OVERRIDES` would (multirun=False: the single run of `python -m
    experiments.run OVERRIDES`) in this process, and return what it left."""
    from . import cli
    from .record import provenance
    from .record.session import scope
    from .task import launch

    stale = provenance.edited_since_import()
    if stale:
        raise BadInput(f"{', '.join(stale)} changed after this Python process imported it: the sweep would train the "
                       f"code in memory while its runs named the file's; restart the kernel (or importlib.reload it), "
                       f"then run again")
    overrides = [str(o) for o in overrides]
    error = None
    cli.tune()
    with scope() as session:
        try:
            code = launch((["-m"] if multirun else []) + overrides, session)
        except BadInput:
            raise
        except Abort as err:
            code, error = err.code, str(err)
        except KeyboardInterrupt:  # a Ctrl-C before the sweep took signals (its checks): nothing was written
            raise
        runs, analysis, uri = what_it_left(session)
        return SweepResult(code, runs, session.summary, session.parent_run_id, session.sweep_id, error, uri,
                           analysis, session.full_summary)


def what_it_left(session) -> tuple[pd.DataFrame, dict, str]:
    """The runs table and analysis of the session's sweep (its end made them), or of its single run."""
    from mlflow.tracking import MlflowClient

    from .analysis.results import NAMES, results_table, with_cells

    if session.result:
        uri = next(iter(session.connections.values())).client.tracking_uri if session.connections else ""
        return session.result["runs"], session.result, uri
    if not session.job_runs:
        return pd.DataFrame(columns=NAMES), {}, ""
    uri = session.job_runs[0][0]
    tracking = next((t for t in session.connections.values() if t.client.tracking_uri == uri), None)
    client = tracking.client if tracking else MlflowClient(uri)
    runs = [client.get_run(run_id) for _, run_id in session.job_runs]
    return with_cells(results_table(runs), []), {}, uri
