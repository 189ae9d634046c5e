"""A sweep's answer: cells (config minus seed) with intervals, one-factor comparisons, main effects, plots."""
from __future__ import annotations

import itertools
import math

import pandas as pd

from . import stats

# Config keys a user sweeps; the factors of a selection are those among them that vary.
FACTOR_KEYS = ("model", "model.activation", "model.pool", "model.init", "optim", "optim.lr", "optim.momentum",
               "optim.weight_decay", "data", "data.fit_to_input", "data.normalize", "data.val_fraction",
               "trainer.epochs", "trainer.batch_size")
METRICS = ("test_acc", "best_val_acc", "train_seconds")


def factors_of(table: pd.DataFrame, swept: list[str] | None = None) -> list[str]:
    """The sweep's swept keys except the seed, else the FACTOR_KEYS whose value varies."""
    if swept:
        return [k for k in swept if k != "seed" and k in table.columns]
    return [k for k in FACTOR_KEYS if k in table.columns and table[k].nunique(dropna=False) > 1]


def label(key: str, value) -> str:
    return str(value) if key in ("model", "optim", "data") else f"{key}={value}"


def cell_name(factors: list[str], values) -> str:
    return ", ".join(label(k, v) for k, v in zip(factors, values)) or "all runs"


def finished(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "FINISHED"]


def cells(table: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """One row per cell: n finished runs, runs that did not finish, and mean/std/95% CI per metric."""
    rows = []
    for values, group in groupby(table, factors):
        ok = finished(group)
        row = {**dict(zip(factors, values)), "cell": cell_name(factors, values), "n": len(ok),
               "not_finished": len(group) - len(ok)}
        for metric in METRICS:
            m = stats.mean_ci(ok[metric])
            row |= {f"{metric}_mean": m.mean, f"{metric}_std": m.std, f"{metric}_ci_low": m.low,
                    f"{metric}_ci_high": m.high}
        rows.append(row)
    return pd.DataFrame(rows)


def groupby(table: pd.DataFrame, factors: list[str]):
    if table.empty:
        return []
    if not factors:
        return [((), table)]
    return [(v if isinstance(v, tuple) else (v,), g) for v, g in table.groupby(factors, sort=True, dropna=False)]


def by_seed(group: pd.DataFrame, metric: str = "test_acc") -> dict:
    ok = finished(group)
    return {int(s): float(v) for s, v in zip(ok["seed"], ok[metric]) if math.isfinite(v)}


def comparisons(table: pd.DataFrame, factors: list[str], metric: str = "test_acc") -> pd.DataFrame:
    """Every pair of cells that differ in exactly one factor: difference, 95% CI, p, and a sentence."""
    groups = groupby(table, factors)
    rows = []
    for (va, ga), (vb, gb) in itertools.combinations(groups, 2):
        differ = [i for i, (x, y) in enumerate(zip(va, vb)) if x != y]
        if len(differ) != 1:
            continue
        i = differ[0]
        d = stats.compare(by_seed(ga, metric), by_seed(gb, metric))
        if d.diff < 0:  # name the better level first
            (va, vb), d = (vb, va), stats.Difference(-d.diff, -d.high, -d.low, d.p, d.n_b, d.n_a, d.test)
        context = {k: v for j, (k, v) in enumerate(zip(factors, va)) if j != i}
        rows.append({"factor": factors[i], "better": va[i], "worse": vb[i],
                     "context": cell_name(list(context), list(context.values())), "diff": d.diff,
                     "ci_low": d.low, "ci_high": d.high, "p": d.p, "n_better": d.n_a, "n_worse": d.n_b,
                     "test": d.test, "sentence": sentence(factors[i], va[i], vb[i], context, d)})
    return pd.DataFrame(rows)


def sentence(factor: str, better, worse, context: dict, d: stats.Difference) -> str:
    on = f"on {cell_name(list(context), list(context.values()))}, " if context else ""
    n = f"n={d.n_a} each" if d.n_a == d.n_b else f"n={d.n_a} and {d.n_b}"
    a, b = label(factor, better), label(factor, worse)
    if math.isnan(d.p):
        return f"{on}{a} vs {b}: not distinguishable ({d.diff * 100:+.1f} points; {n}, too few for an interval)"
    p = "p<0.001" if d.p < 0.001 else f"p={d.p:.3f}"
    numbers = f"95% CI {d.low * 100:.1f} to {d.high * 100:.1f}, {p}, {n}"
    if d.p >= 0.05:
        return f"{on}{a} vs {b}: not distinguishable ({d.diff * 100:+.1f} points, {numbers})"
    return f"{on}{a} beats {b} by {d.diff * 100:+.1f} points ({numbers})"


def main_effects(table: pd.DataFrame, factors: list[str], metric: str = "test_acc") -> pd.DataFrame:
    """Each factor level against the runs at the factor's other levels, averaged over everything else."""
    ok = finished(table)
    rows = []
    for factor in factors:
        for level in sorted(ok[factor].dropna().unique(), key=str):
            at = ok.loc[ok[factor] == level, metric].dropna()
            rest = ok.loc[ok[factor] != level, metric].dropna()
            m, d = stats.mean_ci(at), stats.welch(at, rest)
            rows.append({"factor": factor, "level": level, "n": m.n, "mean": m.mean, "ci_low": m.low,
                         "ci_high": m.high, "effect": d.diff, "effect_ci_low": d.low, "effect_ci_high": d.high,
                         "p": d.p})
    return pd.DataFrame(rows)


def curve_bands(histories: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """cell -> per-epoch mean and 95% CI across its runs; histories: cell -> (epoch x run) values."""
    bands = {}
    for cell, frame in histories.items():
        if frame.empty:  # its finished runs logged no such metric
            continue
        rows = [{"epoch": epoch, **vars(stats.mean_ci(values.dropna()))} for epoch, values in frame.iterrows()]
        bands[cell] = pd.DataFrame(rows)
    return bands
