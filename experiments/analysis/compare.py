"""Pairs of recipes that differ in one factor, compared at the right level.

Recipes (cells) are compared on their accuracy among the runs that trained only across seeds: Welch's
t-test (3 or more runs each; not paired on the seed number, see stats.compare), with the
probability of improvement and Hedges' g beside it; and on their failure rates by Fisher's exact
test, where the numbers of runs let it reach significance at all. These are claims about recipes,
and join the summary's one family of tests (analysis.family).

Two cells with fewer runs can still be looked at through their trained networks: McNemar's exact
test on one run of each, on the same test images. That says these two networks differ, not that the
recipes do (test-set noise only, no seed-to-seed variation): it is worded so, and stays out of the
family of claims about recipes.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from . import stats
from ..config import recipe
from .outcomes import Cell, with_outcomes

Predictions = Callable[[str], "np.ndarray | None"]  # run id -> per test sample, whether it was right


def comparisons(table: pd.DataFrame, factors: list[str], predictions: Predictions | None = None,
                extras: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(recipes, networks): a row per comparison of two recipes (accuracy, and failures where some failed), and
    a row per pair of trained networks compared instead where the recipes have too few runs. extras=False
    leaves out what a simulation does not need (bootstrap intervals, the networks)."""
    groups = Cell.all_of(with_outcomes(table), factors)
    recipes, networks = [], []
    for ca, cb in itertools.combinations(groups, 2):
        differ = [i for i, (x, y) in enumerate(zip(ca.values, cb.values)) if x != y]
        if len(differ) != 1:
            continue
        i = differ[0]
        context = {k: v for j, (k, v) in enumerate(zip(factors, ca.values)) if j != i}
        base = {"factor": factors[i], "context": recipe(list(context), list(context.values()))}
        a, b = ca.values[i], cb.values[i]
        row = base | accuracy_row(a, ca, b, cb, extras)
        recipes.append(row)
        if ca.failed or cb.failed:
            recipes.append(base | failure_row(a, ca, b, cb))
        if row["test"] == "none" and extras and predictions is not None and ca.accs and cb.accs:
            network = network_row(a, ca, b, cb, predictions)
            if network is not None:
                networks.append(base | network)
    return pd.DataFrame(recipes), pd.DataFrame(networks)


def accuracy_row(a, ca: Cell, b, cb: Cell, extras: bool) -> dict:
    """Accuracy among the runs that trained, the better level first; and each level's failures, to be said
    in the same sentence."""
    d = stats.compare(ca.accs, cb.accs)
    if d.diff < 0:  # name the better level first
        a, ca, b, cb = b, cb, a, ca
        d = stats.Difference(-d.diff, -d.high, -d.low, d.p, d.n_b, d.n_a, d.test, d.se, d.df, d.sd)
    row = {"kind": "accuracy", "better": a, "worse": b, "n_a": d.n_a, "n_b": d.n_b, "diff": d.diff, "se": d.se,
           "df": d.df, "sd": d.sd, "p": d.p, "test": d.test, "ci_low": d.low, "ci_high": d.high,
           "fail_a": ca.failed, "counted_a": ca.counted, "failures_a": ca.failures,
           "fail_b": cb.failed, "counted_b": cb.counted, "failures_b": cb.failures}
    if not (ca.accs and cb.accs):
        row["why_not"] = f"{a if not ca.accs else b} has no run that trained"
    elif d.test == "none":
        few = min(len(ca.accs), len(cb.accs)) < stats.MIN_FOR_INTERVAL
        row["why_not"] = (f"{len(ca.accs)} and {len(cb.accs)} runs that trained: a claim about the recipes needs "
                          f"{stats.MIN_FOR_INTERVAL} seeds each" if few else "no seed-to-seed variation")
    if extras and d.test != "none":
        row["prob_improvement"], row["pi_low"], row["pi_high"] = stats.prob_improvement(
            list(ca.accs.values()), list(cb.accs.values()))
        row["hedges_g"] = stats.hedges_g(list(ca.accs.values()), list(cb.accs.values()))
    return row


def failure_row(a, ca: Cell, b, cb: Cell) -> dict:
    """Failure rates by Fisher's exact test, the level that fails less first; in the family only if the numbers
    of runs let it reach the family's level at all."""
    if ca.counted and cb.counted and ca.failed / ca.counted > cb.failed / cb.counted:
        a, ca, b, cb = b, cb, a, ca
    floor = stats.fisher_floor(ca.counted, cb.counted)
    return {"kind": "failures", "better": a, "worse": b, "n_a": ca.counted, "n_b": cb.counted, "fail_a": ca.failed,
            "counted_a": ca.counted, "fail_b": cb.failed, "counted_b": cb.counted, "failures_a": ca.failures,
            "failures_b": cb.failures, "test": "fisher", "p_floor": floor,
            "diff": (cb.failed / cb.counted if cb.counted else math.nan) - (ca.failed / ca.counted if ca.counted
                                                                            else math.nan),
            "p": stats.fisher(ca.failed, ca.counted, cb.failed, cb.counted) if floor <= stats.ALPHA else math.nan,
            "why_not": "" if floor <= stats.ALPHA else
            f"{ca.counted} and {cb.counted} runs cannot show a difference in failure rates (the smallest p Fisher's "
            f"test could give is {floor:.2f})"}


def network_row(a, ca: Cell, b, cb: Cell, predictions: Predictions) -> dict | None:
    """McNemar's exact test on one trained network of each recipe (a seed both trained, if any), same images."""
    common = sorted(set(ca.accs) & set(cb.accs))
    seed_a = common[0] if common else min(ca.accs)
    seed_b = common[0] if common else min(cb.accs)
    right_a, right_b = predictions(ca.run_ids[seed_a]), predictions(cb.run_ids[seed_b])
    if right_a is None or right_b is None or len(right_a) != len(right_b):
        return None
    p, only_a, only_b = stats.mcnemar(right_a, right_b)
    if only_b > only_a:  # the network that got more right first
        a, b, seed_a, seed_b, only_a, only_b = b, a, seed_b, seed_a, only_b, only_a
    n = len(right_a)
    low, high = stats.paired_interval(only_a, only_b, n)
    return {"kind": "networks", "better": a, "worse": b, "seed_a": seed_a, "seed_b": seed_b, "only_a": only_a,
            "only_b": only_b, "test_images": n, "diff": (only_a - only_b) / n, "ci_low": low, "ci_high": high,
            "p": p, "test": "mcnemar"}
