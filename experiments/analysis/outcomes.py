"""What each run came to, and each recipe's verdict over all its runs.

A run either trained (ok) or failed: it collapsed (finished at chance), diverged (nan or inf loss),
failed (an error), or was killed (its process died: closed by the liveness check or a scheduler).
An interrupted run (a Ctrl-C or SIGTERM the harness handled) and a running one say nothing about
the recipe: they are shown, and left out of every rate and test; `resume` trains them again.

A recipe (a cell: every swept value but the seed) has a failure rate over the runs that counted,
with its exact interval; an accuracy among the runs that trained; and one number that counts both,
its score: the mean test accuracy with every failed run at chance, so that a ranking by score cannot
reward a recipe that often blows up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import recipe, recipe_keys
from ..metrics import CELLS, where
from ..record.schema import CHANCE, COLLAPSED_AT, OUTCOMES_BY_STATUS, recorded_outcome
from . import stats

FACTOR_KEYS = ("model", "model.activation", "model.pool", "model.init", "optim", "optim.lr", "optim.momentum",
               "optim.weight_decay", "data", "data.fit_to_input", "data.normalize", "data.val_fraction",
               "trainer.epochs", "trainer.batch_size")
METRICS = tuple(m.name for m in where(CELLS))  # each recipe's mean and interval of these (experiments.metrics)
BOUNDS = {m.name: m.bounds for m in where(CELLS)}

MEANING = {  # what a failure's name says, for a reader of the full summary
    "collapsed": "collapsed: test accuracy <= 0.15 (chance 0.10 + 5 points): it learned nothing a guess would not",
    "diverged": "diverged: the training loss became nan or inf and the run stopped there",
}
FAILURES = ("collapsed", "diverged", "failed", "killed")  # what a recipe's run can come to, besides ok
NOT_COUNTED = ("interrupted", "running")  # a run that says nothing about its recipe
OUTCOMES = ("ok", *FAILURES, *NOT_COUNTED)


def outcome(status: str, test_acc: float, closed: bool = False, diverged: bool = False, tag: str | None = None) -> str:
    """ok, collapsed, diverged, failed, killed (its process died), interrupted (a handled signal) or running: the
    run's final MLflow status first (one that did not end FINISHED is never ok), then what it records of itself
    (its lenet.diverged and lenet.outcome tags, and whether the liveness check closed it)."""
    if status == "FINISHED" and math.isfinite(test_acc):
        return "collapsed" if test_acc <= COLLAPSED_AT else "ok"
    if status == "FAILED" and diverged:
        return "diverged"
    if status == "KILLED" and tag not in OUTCOMES_BY_STATUS["KILLED"]:
        return "killed" if closed else "interrupted"
    return recorded_outcome(status, tag)


def with_outcomes(table: pd.DataFrame) -> pd.DataFrame:
    """The table with each run's outcome: the one it has (the runs table's), else read off its status and flags."""
    if "outcome" in table:
        return table
    flag = lambda name: table[name].fillna(False).astype(bool) if name in table else [False] * len(table)  # noqa: E731
    return table.assign(outcome=[outcome(status, acc, closed, diverged) for status, acc, closed, diverged in
                                 zip(table["status"], table["test_acc"].astype(float), flag("closed"),
                                     flag("diverged"))])


def trained(table: pd.DataFrame) -> pd.DataFrame:
    """The runs whose accuracy means something: they finished above chance."""
    return table[table["outcome"] == "ok"]


def score(table: pd.DataFrame) -> pd.Series:
    """Each counted run's test accuracy, failed runs at chance (nan for runs that do not count)."""
    values = table["test_acc"].astype(float).where(table["outcome"] == "ok", CHANCE)
    return values.where(~table["outcome"].isin(NOT_COUNTED))


def factors_of(table: pd.DataFrame, swept: list[str] | None = None) -> list[str]:
    """The sweep's swept keys except the seed, else the FACTOR_KEYS whose value varies."""
    if swept:
        return [k for k in recipe_keys(swept) if k in table.columns]
    return [k for k in FACTOR_KEYS if k in table.columns and table[k].nunique(dropna=False) > 1]


def level_key(value):
    """How a factor's levels sort: numbers as numbers (batch 64 before 128), then text; missing last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, str(value))


def levels_of(values) -> list:
    return sorted(pd.unique(pd.Series(values).dropna()), key=level_key)


def groupby(table: pd.DataFrame, factors: list[str]):
    if table.empty:
        return []
    if not factors:
        return [((), table)]
    return [(v if isinstance(v, tuple) else (v,), g) for v, g in table.groupby(factors, sort=True, dropna=False)]


def counts_text(group: pd.DataFrame, kinds=FAILURES) -> str:
    counts = group["outcome"].value_counts()
    return ", ".join(f"{counts[k]} {k}" for k in kinds if counts.get(k)) or "none"


@dataclass
class Cell:
    """One recipe's runs, read once: what comparisons and the model need."""

    values: tuple
    counted: int  # runs that trained or failed
    failed: int
    failures: str  # "1 diverged, 1 collapsed", or "none"
    accs: dict  # seed -> test accuracy, of the runs that trained
    run_ids: dict  # seed -> run id, of the runs that trained

    @classmethod
    def of(cls, values: tuple, group: pd.DataFrame, metric: str = "test_acc") -> "Cell":
        ok = trained(group)
        accs = {int(s): float(v) for s, v in zip(ok["seed"], ok[metric]) if math.isfinite(v)}
        failed = int(group["outcome"].isin(FAILURES).sum())
        return cls(values, failed + len(ok), failed, counts_text(group), accs,
                   {int(s): r for s, r in zip(ok["seed"], ok["run_id"])})

    @classmethod
    def all_of(cls, table: pd.DataFrame, factors: list[str], metric: str = "test_acc") -> list["Cell"]:
        """Cell.of for every cell of a table with outcomes, in one pass over its rows (simulations call this
        thousands of times: pandas' groupby per cell cost 5 ms each)."""
        keys = list(zip(*(table[f].tolist() for f in factors))) if factors else [()] * len(table)
        found: dict[tuple, dict] = {}
        for key, kind, seed, value, run_id in zip(keys, table["outcome"], table["seed"], table[metric],
                                                  table["run_id"]):
            cell = found.setdefault(key, {"kinds": {}, "accs": {}, "run_ids": {}})
            cell["kinds"][kind] = cell["kinds"].get(kind, 0) + 1
            if kind == "ok" and math.isfinite(value):
                cell["accs"][int(seed)], cell["run_ids"][int(seed)] = float(value), run_id
        cells = []
        for key in sorted(found, key=lambda k: tuple(map(level_key, k))):
            kinds = found[key]["kinds"]
            failed = sum(kinds.get(k, 0) for k in FAILURES)
            text = ", ".join(f"{kinds[k]} {k}" for k in FAILURES if kinds.get(k)) or "none"
            cells.append(cls(key, failed + kinds.get("ok", 0), failed, text, found[key]["accs"],
                             found[key]["run_ids"]))
        return cells

    def failure_text(self, name: str) -> str:
        return f"{name} failed {self.failed} of {self.counted} runs" + (f" ({self.failures})" if self.failed else "")


def cells(table: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """One row per recipe: its runs by outcome; its failure rate over the counted runs with its exact interval;
    each metric's mean, spread (min to max) and 95% t interval over the runs that trained (no interval from
    fewer than 3: their values instead; one run's accuracy gets its Wilson interval, the test set's noise);
    the interquartile mean; and its score (failed runs at chance) with its interval."""
    table = with_outcomes(table)
    rows = []
    for values, group in groupby(table, factors):
        ok = trained(group)
        cell = Cell.of(values, group)
        low, high = stats.clopper_pearson(cell.failed, cell.counted)
        name = group["cell"].iloc[0] if "cell" in group else recipe(factors, values)  # the runs table's name
        row = {**dict(zip(factors, values)), "cell": name, "runs": len(group),
               "counted": cell.counted, "n": len(ok), "failed_runs": cell.failed,
               **{k: int((group["outcome"] == k).sum()) for k in OUTCOMES},
               "failure_rate": cell.failed / cell.counted if cell.counted else math.nan,
               "failure_ci_low": low, "failure_ci_high": high, "failures": cell.failures,
               "not_counted": counts_text(group, NOT_COUNTED)}
        for metric in METRICS:
            m = stats.mean_ci(ok[metric], BOUNDS[metric])
            row |= {f"{metric}_mean": m.mean, f"{metric}_std": m.std, f"{metric}_ci_low": m.low,
                    f"{metric}_ci_high": m.high, f"{metric}_clipped": m.clipped}
        accs = ok["test_acc"].astype(float)
        row |= {"test_acc_min": accs.min() if len(accs) else math.nan, "test_acc_max": accs.max() if len(accs) else
                math.nan, "test_acc_values": ", ".join(f"{v:.4f}" for v in accs) if 0 < len(accs) < 3 else ""}
        row["test_acc_iqm"], row["test_acc_iqm_low"], row["test_acc_iqm_high"] = stats.iqm(accs)
        s = stats.mean_ci(score(group).dropna(), (0.0, 1.0))
        row |= {"score_mean": s.mean, "score_ci_low": s.low, "score_ci_high": s.high}
        row["test_acc_interval"] = "t" if len(ok) >= stats.MIN_FOR_INTERVAL else ""
        if len(ok) == 1 and "test_size" in ok and math.isfinite(float(ok["test_size"].iloc[0])):
            size = int(ok["test_size"].iloc[0])
            row["test_acc_ci_low"], row["test_acc_ci_high"] = stats.wilson(round(float(accs.iloc[0]) * size), size)
            row["test_acc_interval"] = f"Wilson, {size:,} test images"
        rows.append(row)
    return pd.DataFrame(rows)


def best_cell(cells_table: pd.DataFrame):
    """The recipe with the highest score (failures at chance) among those with a run that trained, or None; ties
    go to the fewer failures."""
    ranked = cells_table[np.isfinite(cells_table["score_mean"].astype(float)) & (cells_table["n"] > 0)] \
        if len(cells_table) else cells_table
    if ranked.empty:
        return None
    return ranked.sort_values(["score_mean", "failure_rate"], ascending=[False, True]).iloc[0]


def with_test_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's 95% Wilson interval of its test accuracy: the test set's own noise (about +-0.1 points
    on MNIST's 10,000 images, +-1.6 on the embedded 1,000), whatever the seeds say."""
    bounds = [stats.wilson(round(acc * size), int(size)) if math.isfinite(acc) and math.isfinite(size) and size > 0
              else (math.nan, math.nan) for acc, size in zip(table["test_acc"].astype(float),
                                                             table["test_size"].astype(float))]
    return table.assign(test_acc_low=[b[0] for b in bounds], test_acc_high=[b[1] for b in bounds])
