"""The swept factors as one linear model: which choices matter, averaged fairly over the others.

An ordinary least squares fit (statsmodels) of test accuracy on the swept factors, each coded with
sum-to-zero (effects) contrasts, with every interaction when the sweep has replicates (seeds) to
tell interactions from noise. Each term is tested with an F test of all its coefficients at once:
a type III test, valid in an unbalanced design (cells with different numbers of finished runs).
Estimated marginal means average the model's cell predictions over the other factors' levels with
equal weights, so a level is not judged by which cells happened to finish.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import OLS

from . import stats


@dataclass
class Factorial:
    model: str  # "interactions", "additive", or "" when none could be fitted
    note: str  # what the model can and cannot say, in a sentence
    anova: pd.DataFrame = field(default_factory=pd.DataFrame)  # term, df, F, p, p_holm
    means: pd.DataFrame = field(default_factory=pd.DataFrame)  # factor, level, n, emm, ci_low, ci_high
    interactions: list[str] = field(default_factory=list)  # significant interactions, said in words


def effects_columns(values: pd.Series, levels: list) -> np.ndarray:
    """Sum-to-zero coding: one column per level but the last, +1 at that level, -1 at the last."""
    out = np.zeros((len(values), len(levels) - 1))
    for j, level in enumerate(levels[:-1]):
        out[:, j] = (values == level).to_numpy(float) - (values == levels[-1]).to_numpy(float)
    return out


def design(frame: pd.DataFrame, levels: dict[str, list], order: int) -> tuple[np.ndarray, dict[tuple, slice]]:
    """The model matrix (intercept, main effects, interactions up to order) and each term's columns."""
    coded = {f: effects_columns(frame[f], lv) for f, lv in levels.items()}
    blocks, terms, start = [np.ones((len(frame), 1))], {}, 1
    for k in range(1, order + 1):
        for term in itertools.combinations(levels, k):
            block = coded[term[0]]
            for f in term[1:]:  # every product of one column from each factor of the term
                block = np.einsum("ni,nj->nij", block, coded[f]).reshape(len(frame), -1)
            blocks.append(block)
            terms[term] = slice(start, start + block.shape[1])
            start += block.shape[1]
    return np.hstack(blocks), terms


def fit(data: pd.DataFrame, factors: list[str], response: str = "test_acc") -> Factorial:
    """Fit the factorial model to the finished runs in data (one row per run)."""
    data = data[np.isfinite(data[response].to_numpy(float))]
    if data.empty:
        return Factorial("", "no finished runs: nothing to model")
    active = [f for f in factors if data[f].nunique() > 1]
    if not active:
        return Factorial("", "one cell: no factors to compare")
    levels = {f: sorted(data[f].unique(), key=str) for f in active}
    replicated = data.groupby(active).size().max() > 1
    if not replicated:  # the additive model's estimates, but nothing to test them against
        x, _ = design(data, levels, 1)
        if np.linalg.matrix_rank(x) < x.shape[1]:
            return Factorial("", f"{len(data)} finished runs are too few to estimate {len(active)} factors' effects")
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no residual df: the scale is 0/0 (and unused)
            result = OLS(data[response].to_numpy(float), x).fit()
            means = marginal_means(result, levels, 1, data, intervals=False)
        note = ("one run per cell: seed noise and interactions cannot be told apart, so there are no tests or "
                "intervals here; the means below are averages over the other factors (the additive model), "
                "valid only if the factors do not interact; sweep seeds (e.g. seed=0,1,2) to test them"
                + missing_note(data, levels))
        return Factorial("additive", note, means=means)
    for order, name in ((len(active), "interactions"), (1, "additive")):  # noqa: B007 (name: the one that fits)
        x, terms = design(data, levels, order)
        if np.linalg.matrix_rank(x) == x.shape[1] and len(data) > x.shape[1]:
            break
    else:
        return Factorial("", f"{len(data)} finished runs are too few to estimate {len(active)} factors' effects")
    result = OLS(data[response].to_numpy(float), x).fit()
    anova = type_iii(result, terms)
    fitted = Factorial(name, model_note(name, result, data, active), anova,
                       marginal_means(result, levels, order, data, intervals=True))
    fitted.interactions = interaction_sentences(result, levels, order, anova)
    return fitted


def missing_note(data: pd.DataFrame, levels: dict[str, list]) -> str:
    """Which cells had no finished run, and so enter the means as the model's prediction for them."""
    present = set(map(tuple, data[list(levels)].astype(str).to_numpy()))
    missing = [combo for combo in itertools.product(*levels.values()) if tuple(map(str, combo)) not in present]
    if not missing:
        return ""
    cells = "; ".join(", ".join(map(str, combo)) for combo in missing)
    return f"; the cells with no finished run ({cells}) count in them as the model's prediction for them"


def model_note(name: str, result, data: pd.DataFrame, active: list[str]) -> str:
    what = " x ".join(active)
    if name == "interactions":
        terms = " with all interactions" if len(active) > 1 else ""
        return (f"OLS of test accuracy on {what}{terms}, sum-to-zero contrasts, type III F tests (Holm-adjusted "
                f"over the terms); {len(data)} finished runs, {result.df_resid:.0f} residual df")
    return (f"OLS of test accuracy on {what}, main effects only (some cells have no finished run, so the "
            f"interactions cannot all be estimated); {len(data)} finished runs, {result.df_resid:.0f} residual df"
            + missing_note(data, {f: sorted(data[f].unique(), key=str) for f in active}))


def type_iii(result, terms: dict[tuple, slice]) -> pd.DataFrame:
    """One F test per term: all of its coefficients zero, the others free."""
    rows = []
    for term, cols in terms.items():
        restriction = np.zeros((cols.stop - cols.start, len(result.params)))
        restriction[:, cols] = np.eye(cols.stop - cols.start)
        test = result.f_test(restriction)
        rows.append({"term": " x ".join(term), "df": cols.stop - cols.start, "F": float(np.squeeze(test.fvalue)),
                     "p": float(test.pvalue)})
    anova = pd.DataFrame(rows)
    anova["p_holm"] = stats.holm(anova["p"])
    return anova


def grid_mean(result, levels: dict[str, list], order: int, fixed: dict) -> tuple[float, float]:
    """The model's mean over every cell with the fixed levels, other factors weighted equally; and its se."""
    free = [f for f in levels if f not in fixed]
    combos = list(itertools.product(*(levels[f] for f in free))) or [()]
    grid = pd.DataFrame([{**fixed, **dict(zip(free, combo))} for combo in combos])
    x, _ = design(grid, levels, order)
    weights = x.mean(axis=0)
    estimate = float(weights @ result.params)
    se = float(np.sqrt(weights @ result.cov_params() @ weights))
    return estimate, se


def marginal_means(result, levels: dict[str, list], order: int, data: pd.DataFrame, intervals: bool) -> pd.DataFrame:
    rows = []
    for factor, values in levels.items():
        for level in values:
            estimate, se = grid_mean(result, levels, order, {factor: level})
            low = high = math.nan
            clipped = False
            if intervals and result.df_resid > 0:  # an accuracy: clipped to [0, 1], and marked so
                half = stats.t_critical(result.df_resid) * se
                clipped = estimate - half < 0 or estimate + half > 1
                low, high = max(0.0, estimate - half), min(1.0, estimate + half)
            rows.append({"factor": factor, "level": level, "n": int((data[factor] == level).sum()),
                         "emm": estimate, "ci_low": low, "ci_high": high, "clipped": clipped})
    return pd.DataFrame(rows)


def interaction_sentences(result, levels: dict[str, list], order: int, anova: pd.DataFrame) -> list[str]:
    """Each significant interaction in words: how one factor's effect changes across another's levels."""
    out = []
    for row in anova[(anova["p_holm"] < stats.ALPHA) & anova["term"].str.contains(" x ")].itertuples():
        term = row.term.split(" x ")
        if len(term) != 2:
            out.append(f"the {row.term} interaction is significant ({stats.fmt_p(row.p_holm)}, Holm): "
                       f"two-factor effects differ across the third; compare the cells directly")
            continue
        by, varied = term if len(levels[term[1]]) <= len(levels[term[0]]) else term[::-1]
        parts = []
        for level in levels[by]:
            means = {v: grid_mean(result, levels, order, {by: level, varied: v})[0] for v in levels[varied]}
            if len(means) == 2:
                (a, ma), (b, mb) = sorted(means.items(), key=lambda kv: str(kv[0]))
                parts.append(f"{a} - {b} is {(ma - mb) * 100:+.1f} points on {level}")
            else:
                best, worst = max(means, key=means.get), min(means, key=means.get)
                parts.append(f"on {level} {best} is best ({means[best]:.4f}) and {worst} worst ({means[worst]:.4f})")
        out.append(f"the effect of {varied} depends on {by}: {'; '.join(parts)} (interaction "
                   f"{stats.fmt_p(row.p_holm)}, Holm)")
    return out
