"""A sweep's answer: cells (config minus seed) with their failures, one family of one-factor comparisons
under Holm's correction, and the factorial model of every swept factor (experiments.factorial).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats

# Config keys a user sweeps; the factors of a selection are those among them that vary.
FACTOR_KEYS = ("model", "model.activation", "model.pool", "model.init", "optim", "optim.lr", "optim.momentum",
               "optim.weight_decay", "data", "data.fit_to_input", "data.normalize", "data.val_fraction",
               "trainer.epochs", "trainer.batch_size")
METRICS = ("test_acc", "best_val_acc", "train_seconds")
BOUNDS = {"test_acc": (0.0, 1.0), "best_val_acc": (0.0, 1.0), "train_seconds": None}

# A run collapsed when it finished at or below chance plus COLLAPSE_MARGIN on the test set (all of
# this project's datasets have ten classes): it learned nothing a guess would not, as LeNet-5's ReLUs
# dying under SGD at lr 0.9 do (0.1135 on MNIST: every image called a 1).
CHANCE = 0.10
COLLAPSE_MARGIN = 0.05
COLLAPSED_AT = CHANCE + COLLAPSE_MARGIN
COLLAPSE_HINT = "collapsed: test accuracy <= 0.15 (chance 0.10 + 5 points); often an lr too high: try optim.lr=0.1"
DIVERGE_HINT = ("diverged: the training loss became nan or inf and the run stopped there; often an lr too high: "
                "try optim.lr=0.1")
OUTCOMES = ("ok", "collapsed", "diverged", "failed", "killed")

Predictions = Callable[[str], "np.ndarray | None"]  # run id -> per test sample, whether it was right


def factors_of(table: pd.DataFrame, swept: list[str] | None = None) -> list[str]:
    """The sweep's swept keys except the seed, else the FACTOR_KEYS whose value varies."""
    if swept:
        return [k for k in swept if k != "seed" and k in table.columns]
    return [k for k in FACTOR_KEYS if k in table.columns and table[k].nunique(dropna=False) > 1]


def label(key: str, value) -> str:
    return str(value) if key in ("model", "optim", "data") else f"{key}={value}"


def cell_name(factors: list[str], values) -> str:
    return ", ".join(label(k, v) for k, v in zip(factors, values)) or "all runs"


def outcome(status: str, test_acc: float) -> str:
    """ok, collapsed (finished at chance), diverged, failed or killed."""
    if status == "FINISHED":
        return "collapsed" if math.isfinite(test_acc) and test_acc <= COLLAPSED_AT else "ok"
    return {"DIVERGED": "diverged", "KILLED": "killed"}.get(status, "failed")


def with_outcomes(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(outcome=[outcome(s, a) for s, a in zip(table["status"], table["test_acc"].astype(float))])


def with_test_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's 95% Wilson interval of its test accuracy: the test set's own noise (about +-0.1 points
    on MNIST's 10,000 images, +-1.6 on the embedded 1,000), whatever the seeds say."""
    bounds = [stats.wilson(round(acc * size), int(size)) if math.isfinite(acc) and math.isfinite(size) and size > 0
              else (math.nan, math.nan) for acc, size in zip(table["test_acc"].astype(float),
                                                             table["test_size"].astype(float))]
    return table.assign(test_acc_low=[b[0] for b in bounds], test_acc_high=[b[1] for b in bounds])


def finished(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "FINISHED"]


def groupby(table: pd.DataFrame, factors: list[str]):
    if table.empty:
        return []
    if not factors:
        return [((), table)]
    return [(v if isinstance(v, tuple) else (v,), g) for v, g in table.groupby(factors, sort=True, dropna=False)]


def failures_text(group: pd.DataFrame) -> str:
    counts = group["outcome"].value_counts()
    return ", ".join(f"{counts[k]} {k}" for k in OUTCOMES[1:] if counts.get(k)) or "none"


def cells(table: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """One row per cell: runs and their outcomes, the failure rate with its exact interval, and each
    metric's mean, std and 95% t interval over the finished runs (no interval from fewer than 3:
    their values instead; one run's test accuracy gets its Wilson interval: test-set noise)."""
    table = with_outcomes(table)
    rows = []
    for values, group in groupby(table, factors):
        ok = finished(group)
        fails = int((group["outcome"] != "ok").sum())
        low, high = stats.clopper_pearson(fails, len(group))
        row = {**dict(zip(factors, values)), "cell": cell_name(factors, values), "runs": len(group), "n": len(ok),
               **{k: int((group["outcome"] == k).sum()) for k in OUTCOMES}, "failure_rate": fails / len(group),
               "failure_ci_low": low, "failure_ci_high": high, "failures": failures_text(group)}
        for metric in METRICS:
            m = stats.mean_ci(ok[metric], BOUNDS[metric])
            row |= {f"{metric}_mean": m.mean, f"{metric}_std": m.std, f"{metric}_ci_low": m.low,
                    f"{metric}_ci_high": m.high, f"{metric}_clipped": m.clipped}
        row["test_acc_values"] = ", ".join(f"{v:.4f}" for v in ok["test_acc"]) if 0 < len(ok) < 3 else ""
        row["test_acc_interval"] = "t" if len(ok) >= stats.MIN_FOR_INTERVAL else ""
        if len(ok) == 1 and "test_size" in ok and math.isfinite(float(ok["test_size"].iloc[0])):
            size = int(ok["test_size"].iloc[0])
            acc = float(ok["test_acc"].iloc[0])
            row["test_acc_ci_low"], row["test_acc_ci_high"] = stats.wilson(round(acc * size), size)
            row["test_acc_interval"] = f"Wilson, {size:,} test images"
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Cell:
    """What comparisons need of one cell's runs, read once."""

    runs: int
    seeds: dict  # seed -> metric, of the finished runs
    run_ids: dict  # seed -> run id, of the finished runs
    failed: int  # runs whose outcome is not ok
    failures: str  # failures_text

    @classmethod
    def of(cls, group: pd.DataFrame, metric: str) -> "Cell":
        ok = finished(group)
        seeds = {int(s): float(v) for s, v in zip(ok["seed"], ok[metric]) if math.isfinite(v)}
        run_ids = {int(s): r for s, r in zip(ok["seed"], ok["run_id"])}
        failed = int((group["outcome"] != "ok").sum())
        return cls(len(group), seeds, run_ids, failed, failures_text(group) if failed else "none")


def comparisons(table: pd.DataFrame, factors: list[str], predictions: Predictions | None = None,
                metric: str = "test_acc", describe: bool = True) -> pd.DataFrame:
    """Every pair of cells that differ in one factor, compared on accuracy and, where a cell has
    failures, on its failure rate: one family, Holm-adjusted, each with its sentence (describe=False
    leaves the sentences out: a simulation needs only the decisions)."""
    groups = [(values, Cell.of(group, metric)) for values, group in groupby(with_outcomes(table), factors)]
    rows = []
    for (va, ca), (vb, cb) in itertools.combinations(groups, 2):
        differ = [i for i, (x, y) in enumerate(zip(va, vb)) if x != y]
        if len(differ) != 1:
            continue
        i = differ[0]
        context = {k: v for j, (k, v) in enumerate(zip(factors, va)) if j != i}
        base = {"factor": factors[i], "context": cell_name(list(context), list(context.values()))}
        rows.append(base | accuracy_row(va[i], ca, vb[i], cb, predictions))
        if ca.failed or cb.failed:
            rows.append(base | failure_row(va[i], ca, vb[i], cb))
    found = pd.DataFrame(rows)
    if found.empty:
        return found
    found["p_holm"] = stats.holm(found["p"])
    found["level"] = stats.holm_levels(found["p"])
    m = int(np.isfinite(found["p"]).sum())
    found["significant"] = found["p_holm"] < stats.ALPHA
    if describe:
        found["sentence"] = [sentence(row, m) for row in found.to_dict("records")]
    return found


def accuracy_row(a, ca: Cell, b, cb: Cell, predictions: Predictions | None) -> dict:
    d, left_out = stats.compare(ca.seeds, cb.seeds)
    row = {"kind": "accuracy", "n_a": d.n_a, "n_b": d.n_b, "left_out": len(left_out),
           "left_out_seeds": " ".join(map(str, left_out))}
    if d.test == "none" and ca.seeds and cb.seeds and predictions is not None:
        mc = mcnemar_row(ca, cb, predictions)
        if mc is not None:
            d, row["only_a"], row["only_b"], row["test_images"] = mc
    if not (ca.seeds and cb.seeds):
        row["why_not"] = f"{a if not ca.seeds else b} has no finished run"
    elif d.test == "none":
        few = min(d.n_a, d.n_b) < stats.MIN_FOR_INTERVAL
        row["why_not"] = (f"n={d.n_a} and {d.n_b}: too few runs for a t-test, values {values(ca)} vs {values(cb)}"
                          if few else "no seed-to-seed variation")
        row["why_not"] += "; no test-set predictions to compare" if predictions is None else ""
    if d.diff < 0:  # name the better level first
        a, b = b, a
        d = stats.Difference(-d.diff, -d.high, -d.low, d.p, d.n_b, d.n_a, d.test, d.se, d.df, d.sd)
        row["n_a"], row["n_b"] = d.n_a, d.n_b
        if "only_a" in row:
            row["only_a"], row["only_b"] = row["only_b"], row["only_a"]
    return row | {"better": a, "worse": b, "diff": d.diff, "se": d.se, "df": d.df, "sd": d.sd, "p": d.p,
                  "test": d.test, "ci_low": d.low, "ci_high": d.high}


def values(cell: Cell) -> str:
    return ", ".join(f"{v:.4f}" for _, v in sorted(cell.seeds.items()))


def mcnemar_row(ca: Cell, cb: Cell, predictions: Predictions):
    """McNemar on one run of each cell (a seed both finished, if any): the same test images, right or wrong."""
    common = sorted(set(ca.seeds) & set(cb.seeds))
    run_a = ca.run_ids[common[0] if common else min(ca.seeds)]
    run_b = cb.run_ids[common[0] if common else min(cb.seeds)]
    right_a, right_b = predictions(run_a), predictions(run_b)
    if right_a is None or right_b is None or len(right_a) != len(right_b):
        return None
    p, only_a, only_b = stats.mcnemar(right_a, right_b)
    n = len(right_a)
    diff = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0)) / n  # paired proportions
    d = stats.Difference(diff, diff - 1.96 * se, diff + 1.96 * se, p, len(ca.seeds), len(cb.seeds), "mcnemar", se,
                         math.inf)
    return d, only_a, only_b, n


def failure_row(a, ca: Cell, b, cb: Cell) -> dict:
    if ca.failed / ca.runs > cb.failed / cb.runs:  # the level that fails less first
        a, ca, b, cb = b, cb, a, ca
    return {"kind": "failures", "better": a, "worse": b, "n_a": ca.runs, "n_b": cb.runs, "fail_a": ca.failed,
            "fail_b": cb.failed, "failures_a": ca.failures, "failures_b": cb.failures,
            "diff": cb.failed / cb.runs - ca.failed / ca.runs, "test": "fisher",
            "p": stats.fisher(ca.failed, ca.runs, cb.failed, cb.runs)}


def sentence(row: dict, m: int) -> str:
    on = f"on {row['context']}, " if row["context"] != "all runs" else ""
    a, b = label(row["factor"], row["better"]), label(row["factor"], row["worse"])
    p = f"{stats.fmt_p(row['p_holm'])} Holm"
    if row["kind"] == "failures":
        counts = (f"{int(row['fail_b'])} of {int(row['n_b'])} runs failed ({row['failures_b']}) vs "
                  f"{int(row['fail_a'])} of {int(row['n_a'])}")
        if row["significant"]:
            return f"{on}{b} fails more often than {a}: {counts} (Fisher {p})"
        return f"{on}{a} vs {b}, failures: {counts}; inconclusive (Fisher {p})"
    if row["test"] == "none":
        gap = f"{row['diff'] * 100:+.1f} points" if math.isfinite(row["diff"]) else "no accuracy"
        return f"{on}{a} vs {b}: {gap}, not testable ({row['why_not']})"
    d = stats.at_level(stats.Difference(row["diff"], row["ci_low"], row["ci_high"], row["p"], row["n_a"],
                                        row["n_b"], row["test"], row["se"], row["df"]), row["level"])
    if row["test"] == "mcnemar":
        z = stats.z_critical(row["level"])
        low, high = row["diff"] - z * row["se"], row["diff"] + z * row["se"]
        numbers = (f"95% CI {low * 100:.1f} to {high * 100:.1f}, McNemar on the same {int(row['test_images']):,} "
                   f"test images: {int(row['only_a'])} vs {int(row['only_b'])} right only for one, {p}, "
                   f"{runs_text(row)}")
    else:
        numbers = f"95% CI {d.low * 100:.1f} to {d.high * 100:.1f}, {p}, {sizes(row)}"
    if row["significant"]:
        return f"{on}{a} beats {b} by {row['diff'] * 100:+.1f} points ({numbers})"
    return f"{on}{a} vs {b}: inconclusive at {n_text(row)} ({row['diff'] * 100:+.1f} points, {numbers}){power(row, m)}"


def sizes(row: dict) -> str:
    if row["test"] == "paired":
        left = f"; seed {row['left_out_seeds']} left out: only one cell finished it" if row["left_out"] else ""
        return f"paired on {row['n_a']} seeds{left}" if left else f"n={row['n_a']} each"
    return f"n={row['n_a']} each" if row["n_a"] == row["n_b"] else f"n={row['n_a']} and {row['n_b']}"


def runs_text(row: dict) -> str:
    """What a McNemar comparison compared: one run of each cell (of how many)."""
    if row["n_a"] == row["n_b"] == 1:
        return "one run each"
    return f"one run of each cell, of n={int(row['n_a'])} and {int(row['n_b'])}: too few for a t-test"


def n_text(row: dict) -> str:
    if row["test"] == "mcnemar":
        return "one run each" if row["n_a"] == row["n_b"] == 1 else "one run of each cell"
    return f"n={row['n_a']}" if row["n_a"] == row["n_b"] else f"n={row['n_a']} and {row['n_b']}"


def power(row: dict, m: int) -> str:
    """How many seeds per cell would find the observed gap (80% power, at the family's Bonferroni level)."""
    if row["test"] == "mcnemar":
        return "; sweep seeds (seed=0,1,2) to compare across training runs"
    gap = abs(row["diff"])
    if gap < 0.0005:
        return "; the two cells agree to 0.05 points"
    need = stats.seeds_needed(gap, row["sd"], row["test"] == "paired", alpha=stats.ALPHA / max(m, 1))
    if need is None:
        return ""
    return f"; about {need} seeds per cell would detect a gap of {gap * 100:.1f} points"


def curve_bands(histories: dict[str, pd.DataFrame], bounds: tuple[float, float] | None = None) -> dict:
    """cell -> per-epoch mean and 95% interval across its runs (none from fewer than 3 runs);
    histories: cell -> (epoch x run) values."""
    bands = {}
    for cell, frame in histories.items():
        if frame.empty:  # its finished runs logged no such metric
            continue
        rows = [{"epoch": epoch, "runs": int(values.notna().sum()), **vars(stats.mean_ci(values.dropna(), bounds))}
                for epoch, values in frame.iterrows()]
        bands[cell] = pd.DataFrame(rows)
    return bands
