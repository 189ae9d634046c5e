"""One family for everything the summary claims about recipes: the comparisons of accuracy and of failure
rates, and the factorial model's terms, adjusted together (Holm's step-down by default; Benjamini-Hochberg's
false discovery rate for large exploratory sweeps). Under no real differences, the chance that the summary
claims any is at most 5% (Holm); with fdr_bh, at most 5% of its claims are expected to be false.

Tests that cannot reach significance (Fisher's on 1 run against 1) stay out of the count. Comparisons of
two trained networks (McNemar) are a family of their own: they speak about those networks, not recipes.

A fact several significant tests state is one finding: classic beating d2l on adam and on sgd, and the model
term that agrees, are one finding stated by three tests (`findings`); the count a reader sees is of findings.
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
        """How many tests of a difference between recipes are significant (several may state one finding)."""
        found = int(self.recipes["significant"].sum()) if len(self.recipes) else 0
        return found + (int(self.model.anova["significant"].sum()) if len(self.model.anova) else 0)


@dataclass
class Finding:
    """One fact the summary states, with every significant test that states it: the pairwise comparisons of the
    same two levels (one per context where it holds), and the model's main-effect term when it agrees."""

    kind: str  # "accuracy", "failures", "term" (a main effect no comparison states), "interaction"
    factor: str  # for an interaction, its term ("model x optim")
    better: object = None
    worse: object = None
    rows: list = field(default_factory=list)  # the comparisons (dicts), the strongest first
    term: dict | None = None  # the model's term (a row of its anova)

    @property
    def p_adj(self) -> float:
        return min([r["p_adj"] for r in self.rows] + ([self.term["p_adj"]] if self.term else []))


def findings(v: Verdict) -> list[Finding]:
    """The significant tests grouped into the facts they state, the strongest first."""
    groups: dict[tuple, Finding] = {}
    found = v.recipes[v.recipes["significant"]].sort_values("p_adj") if len(v.recipes) else v.recipes
    for row in found.to_dict("records"):
        key = (row["kind"], row["factor"], str(row["better"]), str(row["worse"]))
        groups.setdefault(key, Finding(row["kind"], row["factor"], row["better"], row["worse"])).rows.append(row)
    out = list(groups.values())
    anova = v.model.anova
    for term in (anova[anova["significant"]].to_dict("records") if len(anova) else []):
        if " x " in term["term"]:
            out.append(Finding("interaction", term["term"], term=term))
            continue
        factor = term["term"]
        means = {level: v.model.mean_of({factor: level}) for level in v.model.levels[factor]}
        best = worst = same = None
        if all(math.isfinite(m) for m in means.values()):
            best, worst = max(means, key=means.get), min(means, key=means.get)
            same = groups.get(("accuracy", factor, str(best), str(worst)))
        else:  # no average to rank by (a recipe has no run that trained): the comparisons, if they agree, say it
            alike = [g for k, g in groups.items() if k[:2] == ("accuracy", factor)]
            same = alike[0] if len(alike) == 1 else None
        if same is not None:  # the comparisons say it level by level, the model term on average
            same.term = term
        else:
            out.append(Finding("term", factor, best, worst, term=term))
    return sorted(out, key=lambda f: f.p_adj)


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
