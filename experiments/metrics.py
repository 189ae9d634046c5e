"""Every metric a run logs, in one place: its name, whether it is logged per epoch (step = epoch: a curve) or once
at the end (step 0: one bar per run), its bounds, how it is written, and where it is shown. The job logs what is
here, its progress line, the runs table, the recipes' table, the curves and the saved MLflow view read it: a new
metric is its row here and the code that computes it (lenet.engine for a per-epoch one, experiments.job for a
final one).
"""
from __future__ import annotations

from dataclasses import dataclass

# Where a metric is shown: the job's per-epoch progress line, the runs table (a column), the recipes' table (mean
# and interval per recipe), the curve figures (per epoch, a band per recipe), the saved view (a column), its charts.
PROGRESS, RUNS, CELLS, CURVES, VIEW, CHART = "progress", "runs", "cells", "curves", "view", "chart"


@dataclass(frozen=True)
class Metric:
    name: str
    per_epoch: bool  # logged at step = epoch (a curve), else once at step 0 (a bar)
    bounds: tuple[float, float] | None  # what it cannot leave: an interval is clipped to it
    fmt: str  # how a person reads one value
    shown: frozenset[str]
    column: str = ""  # its name in the runs table, where it differs
    meaning: str = ""


def metric(name: str, per_epoch: bool, bounds=None, fmt: str = ".4f", shown=(), column: str = "",
           meaning: str = "") -> Metric:
    return Metric(name, per_epoch, bounds, fmt, frozenset(shown), column or name, meaning)


ACCURACY = (0.0, 1.0)
METRICS = (
    metric("train_loss", True, None, ".4f", (PROGRESS, CURVES, RUNS),
           meaning="training loss of its last epoch (missing where it became nan or inf)"),
    metric("train_acc", True, ACCURACY, ".4f", (PROGRESS,)),
    metric("val_loss", True, None, ".4f", (PROGRESS,)),
    metric("val_acc", True, ACCURACY, ".4f", (PROGRESS, CURVES, CHART)),
    metric("epoch_seconds", True, None, ".2f"),
    metric("samples_per_second", True, None, ".0f", (PROGRESS,)),
    metric("test_acc", False, ACCURACY, ".4f", (RUNS, CELLS, VIEW, CHART),
           meaning="test accuracy of the best-by-validation model (missing unless it finished)"),
    metric("test_loss", False, None, ".4f"),
    metric("best_val_acc", False, ACCURACY, ".4f", (RUNS, CELLS, VIEW),
           meaning="the best validation accuracy over the epochs"),
    metric("best_epoch", False, None, "d", (RUNS,),
           meaning="the epoch of the best validation accuracy (whose model is tested)"),
    metric("last_test_acc", False, ACCURACY, ".4f", (RUNS,), meaning="test accuracy of the last epoch's model"),
    metric("last_test_loss", False, None, ".4f"),
    metric("train_seconds", False, None, ".2f", (RUNS, CELLS, VIEW),
           meaning="seconds spent training, evaluation included"),
    metric("train_samples_per_second", False, None, ".0f", (RUNS,), column="samples_per_second",
           meaning="training samples per second"),
    # Written by the sweep's end, from the runs table: test_acc, a failed run at chance (analysis.outcomes.score).
    metric("score", False, ACCURACY, ".4f", (VIEW, CHART)),
)
BY_NAME = {m.name: m for m in METRICS}


def where(place: str, per_epoch: bool | None = None) -> tuple[Metric, ...]:
    """The metrics shown in place (PROGRESS, RUNS, ...), per-epoch ones or final ones only if asked."""
    return tuple(m for m in METRICS if place in m.shown and (per_epoch is None or m.per_epoch == per_epoch))


def per_epoch() -> tuple[str, ...]:
    return tuple(m.name for m in METRICS if m.per_epoch)


def final() -> tuple[str, ...]:
    return tuple(m.name for m in METRICS if not m.per_epoch and m.name != "score")
