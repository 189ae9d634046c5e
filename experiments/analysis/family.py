"""One family for everything the summary claims about recipes: the comparisons of accuracy and of failure
rates, and the factorial model's terms, adjusted together (Holm's step-down by default; Benjamini-Hochberg's
false discovery rate for large exploratory sweeps). Under no real differences, the chance that the summary
claims any is at most 5% (Holm); with fdr_bh, at most 5% of its claims are expected to be false.

Tests that cannot reach significance (Fisher's on 1 run against 1) stay out of the count. Comparisons of
two trained networks (McNemar) are a family of their own: they speak about those networks, not recipes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import compare, factorial, stats
from .outcomes import cells, levels_of, trained, with_outcomes

CORRECTIONS = ("holm", "fdr_bh")


@dataclass
class Verdict:
    """Everything the summary says, and the numbers behind it."""

    cells: pd.DataFrame
    recipes: pd.DataFrame  # comparisons of recipes (accuracy, failures): p, p_adj, level, significant
    networks: pd.DataFrame  # comparisons of trained networks (McNemar), adjusted among themselves
    model: factorial.Factorial
    correction: str = "holm"
    tests: int = 0  # the size of the family
    counts: dict = field(default_factory=dict)  # tests by kind: accuracy, failures, terms

    def claims(self) -> int:
        """How many claims of a difference between recipes the summary makes."""
        found = int(self.recipes["significant"].sum()) if len(self.recipes) else 0
        return found + (int(self.model.anova["significant"].sum()) if len(self.model.anova) else 0)


def adjust(p_values, method: str = "holm") -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values (nan stays nan, outside the family) and each test's confidence level for its interval:
    Holm: 1 - alpha / (m - rank) at its step; fdr_bh: 1 - alpha * R / m (false coverage), R the discoveries."""
    p = np.asarray(p_values, dtype=float)
    adjusted, levels = np.full(len(p), math.nan), np.full(len(p), stats.LEVEL)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return adjusted, levels
    if method == "holm":  # as statsmodels' multipletests (tested against it), without its gc.collect() per call
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = len(ok) - np.arange(len(ok))  # m, m - 1, ..., 1
        adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * steps), 1.0)
        levels[order] = 1 - stats.ALPHA / steps
    else:
        from statsmodels.stats.multitest import multipletests

        reject, adjusted[ok], _, _ = multipletests(p[ok], alpha=stats.ALPHA, method=method)
        levels[ok] = 1 - stats.ALPHA * max(int(reject.sum()), 1) / len(ok)
    return adjusted, levels


def verdict(table: pd.DataFrame, factors: list[str], predictions=None, correction: str = "holm",
            extras: bool = True) -> Verdict:
    """The cells, the comparisons and the model of a sweep's runs table, with one family of claims.
    extras=False: only what decides the claims (a simulation needs nothing else)."""
    table = with_outcomes(table)
    recipes, networks = compare.comparisons(table, factors, predictions, extras)
    levels = {f: levels_of(table[f]) for f in factors}
    model = factorial.fit(trained(table), factors, levels)
    found = Verdict(cells(table, factors) if extras else pd.DataFrame(), recipes, networks, model, correction)
    p_recipes = recipes["p"].to_numpy(float) if len(recipes) else np.array([])
    p_terms = model.anova["p"].to_numpy(float) if len(model.anova) else np.array([])
    adjusted, levels_ = adjust(np.concatenate([p_recipes, p_terms]), correction)
    if len(recipes):
        recipes["p_adj"], recipes["level"] = adjusted[:len(p_recipes)], levels_[:len(p_recipes)]
        recipes["significant"] = recipes["p_adj"] < stats.ALPHA
        at_level(recipes)
    if len(model.anova):
        model.anova["p_adj"] = adjusted[len(p_recipes):]
        model.anova["significant"] = model.anova["p_adj"] < stats.ALPHA
    if len(networks):
        networks["p_adj"], networks["level"] = adjust(networks["p"], correction)
        networks["significant"] = networks["p_adj"] < stats.ALPHA
    found.tests = int(np.isfinite(adjusted).sum())
    kinds = recipes["kind"][np.isfinite(p_recipes)].value_counts().to_dict() if len(recipes) else {}
    found.counts = {"accuracy": kinds.get("accuracy", 0), "failures": kinds.get("failures", 0),
                    "terms": int(np.isfinite(p_terms).sum())}
    return found


def at_level(recipes: pd.DataFrame) -> None:
    """The accuracy comparisons' t intervals recomputed at each test's level in the family, in place: the CSV
    holds the interval its sentence states."""
    rows = (recipes["kind"] == "accuracy").to_numpy() & np.isfinite(recipes["se"].to_numpy(float))
    if not rows.any():
        return
    from scipy import special  # here: a sweep that makes no t test does not import scipy

    level, df, se = (recipes.loc[rows, c].to_numpy(float) for c in ("level", "df", "se"))
    half = special.stdtrit(df, 0.5 + level / 2) * se  # stats.t.ppf, vectorised
    diff = recipes.loc[rows, "diff"].to_numpy(float)
    recipes.loc[rows, "ci_low"], recipes.loc[rows, "ci_high"] = diff - half, diff + half
