"""The swept factors as one model of accuracy among the runs that trained: which choices matter, averaged
fairly over the others, without assuming that every recipe varies as much from seed to seed.

LeNet sweeps mix recipes whose seeds agree to a tenth of a point (Adam) with recipes that swing by tens
of points (sigmoid + SGD), so no test here pools their spreads:

- every cell with 3 or more runs that trained: each term (main effect or interaction, sum-to-zero
  contrasts of the cell means) by the Welch-James test (Johansen 1980), each cell with its own variance
  (with HC3's small-sample inflation) and an approximate F with Welch-type degrees of freedom;
- some cells with fewer: ordinary least squares on the runs of the cells that have 3, the largest
  model those cells can estimate (only the terms that need a missing cell are dropped), and each term by
  a Wald F test with heteroskedasticity-robust (HC3) covariance;
- one run per cell: the additive model's means only, no tests (seed noise and interactions cannot be
  told apart).

Marginal means average the cell means with equal weights; a level whose average would need a cell with
no run that trained is "not estimable" (as emmeans says), never filled in by the model.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats
from .outcomes import levels_of

MIN_RUNS = stats.MIN_FOR_INTERVAL  # runs that trained a cell needs to count in the model's tests


@dataclass
class Factorial:
    model: str  # "welch-james", "robust-ols", "additive", or "" when none could be fitted
    note: str  # what the model can and cannot say, in a sentence
    anova: pd.DataFrame = field(default_factory=pd.DataFrame)  # term, df, df_denom, F, p
    means: pd.DataFrame = field(default_factory=pd.DataFrame)  # factor, level, n, emm, ci_low, ci_high, estimable
    levels: dict = field(default_factory=dict)
    cell_means: dict = field(default_factory=dict)  # combo (tuple of levels) -> the model's mean, where estimable

    def mean_of(self, fixed: dict) -> float:
        """The average of the cell means with these levels (others weighted equally); nan if one is missing."""
        free = [f for f in self.levels if f not in fixed]
        combos = [tuple({**fixed, **dict(zip(free, rest))}[f] for f in self.levels)
                  for rest in itertools.product(*(self.levels[f] for f in free))]
        values = [self.cell_means.get(combo, math.nan) for combo in combos]
        return float(np.mean(values)) if values else math.nan


def fit(trained: pd.DataFrame, factors: list[str], levels: dict[str, list] | None = None,
        response: str = "test_acc") -> Factorial:
    """The factorial model of the runs that trained (one row per run); levels: every level swept, trained or
    not (default: those in trained)."""
    data = trained[np.isfinite(trained[response].to_numpy(float))]
    levels = {f: list(v) for f, v in (levels or {f: levels_of(data[f]) for f in factors}).items()}
    active = {f: v for f, v in levels.items() if len(v) > 1}
    if data.empty:
        return Factorial("", "no run trained: nothing to model")
    if not active:
        return Factorial("", "one cell: no factors to compare")
    combos = list(itertools.product(*active.values()))
    runs: dict[tuple, list] = {}
    for *combo, value in zip(*(data[f].tolist() for f in active), data[response].tolist()):
        runs.setdefault(tuple(combo), []).append(value)
    runs = {c: np.asarray(v, dtype=float) for c, v in runs.items()}
    if all(len(runs.get(c, ())) >= MIN_RUNS for c in combos):
        return welch_james_model(runs, combos, active)
    usable = {c: v for c, v in runs.items() if len(v) >= MIN_RUNS}
    if usable:
        return robust_ols_model(usable, combos, active)
    return additive_model(runs, combos, active)


def contrasts(levels: dict[str, list]) -> dict[tuple, np.ndarray]:
    """Each term's sum-to-zero contrasts of the cell means (cells in itertools.product order)."""
    sizes = [len(v) for v in levels.values()]
    main = [np.hstack([np.eye(n - 1), -np.ones((n - 1, 1))]) for n in sizes]
    average = [np.ones((1, n)) / n for n in sizes]
    out = {}
    for order in range(1, len(sizes) + 1):
        for term in itertools.combinations(range(len(sizes)), order):
            matrix = np.ones((1, 1))
            for i in range(len(sizes)):
                matrix = np.kron(matrix, main[i] if i in term else average[i])
            out[tuple(list(levels)[i] for i in term)] = matrix
    return out


def welch_james(means: np.ndarray, variances: np.ndarray, n: np.ndarray, contrast: np.ndarray):
    """Johansen's (1980) Welch-James test that contrast @ means = 0, each cell with its own variance:
    (statistic, df1, df2, p) of its approximate F."""
    s = np.diag(variances / n)
    q = contrast.shape[0]
    inner = np.linalg.inv(contrast @ s @ contrast.T)
    cm = contrast @ means
    statistic = float(cm @ inner @ cm)
    # A = 1/2 sum_c (tr(P Q_c)^2 + tr((P Q_c)^2)) / (n_c - 1), Q_c selecting cell c: both traces are P_cc^2
    p_matrix = s @ contrast.T @ inner @ contrast
    a = float(sum(p_matrix[c, c] ** 2 / (n[c] - 1) for c in range(len(means))))
    scale = q + 2 * a - 6 * a / (q + 2)
    df2 = q * (q + 2) / (3 * a)
    f = statistic / scale
    from scipy import special

    return f, q, df2, float(special.fdtrc(q, df2, f))  # stats.f.sf


def welch_james_model(runs: dict, combos: list, levels: dict) -> Factorial:
    means = np.array([runs[c].mean() for c in combos])
    n = np.array([len(runs[c]) for c in combos])
    # Each cell's variance with HC3's small-sample inflation, n / (n - 1): with 3 runs a cell's spread is known to
    # 2 degrees of freedom, and a cell ten times noisier than the rest, underestimated, would make the plain
    # Welch-James test claim too often (7% of pure-noise tests at 0.05; 4% with the inflation).
    variances = np.array([runs[c].var(ddof=1) for c in combos]) * n / (n - 1)
    if np.any(variances <= 0):  # a cell whose runs agree exactly (to rounding): no spread to test against
        variances = np.maximum(variances, 1e-12)
    rows = []
    for term, matrix in contrasts(levels).items():
        f, df1, df2, p = welch_james(means, variances, n, matrix)
        rows.append({"term": " x ".join(term), "df": df1, "df_denom": df2, "F": f, "p": p})
    fitted = Factorial("welch-james", f"Welch-James tests of test accuracy on {' x '.join(levels)} (cell means, "
                       f"each cell's own variance; {int(n.sum())} runs that trained, {len(combos)} cells)",
                       pd.DataFrame(rows), levels=levels, cell_means=dict(zip(combos, means)))
    fitted.means = cell_average_means(fitted, runs)
    return fitted


def cell_average_means(fitted: Factorial, runs: dict) -> pd.DataFrame:
    """Each level's mean of its cells' means, with a Welch-Satterthwaite t interval (clipped to [0, 1])."""
    rows = []
    for i, (factor, values) in enumerate(fitted.levels.items()):
        for level in values:
            cells = [c for c in itertools.product(*fitted.levels.values()) if c[i] == level]
            row = {"factor": factor, "level": level, "n": sum(len(runs.get(c, ())) for c in cells),
                   "emm": fitted.mean_of({factor: level}), "ci_low": math.nan, "ci_high": math.nan,
                   "estimable": all(c in fitted.cell_means for c in cells)}
            if row["estimable"] and all(len(runs.get(c, ())) >= 2 for c in cells):
                parts = np.array([runs[c].var(ddof=1) / (len(runs[c]) - 1) / len(cells) ** 2 for c in cells])  # HC3
                df = parts.sum() ** 2 / sum(p**2 / (len(runs[c]) - 1) for p, c in zip(parts, cells)) \
                    if parts.sum() > 0 else math.inf
                half = stats.t_critical(df) * math.sqrt(parts.sum())
                row["ci_low"], row["ci_high"] = max(0.0, row["emm"] - half), min(1.0, row["emm"] + half)
            rows.append(row)
    return pd.DataFrame(rows)


def design(frame: pd.DataFrame, levels: dict[str, list], terms: list[tuple]) -> tuple[np.ndarray, dict]:
    """The model matrix (intercept and the given terms, sum-to-zero coded) and each term's columns."""
    coded = {}
    for f, lv in levels.items():
        coded[f] = np.column_stack([(frame[f] == lvl).to_numpy(float) - (frame[f] == lv[-1]).to_numpy(float)
                                    for lvl in lv[:-1]])
    blocks, columns, start = [np.ones((len(frame), 1))], {}, 1
    for term in terms:
        block = coded[term[0]]
        for f in term[1:]:  # every product of one column from each factor of the term
            block = np.einsum("ni,nj->nij", block, coded[f]).reshape(len(frame), -1)
        blocks.append(block)
        columns[term] = slice(start, start + block.shape[1])
        start += block.shape[1]
    return np.hstack(blocks), columns


def estimable_terms(frame: pd.DataFrame, levels: dict[str, list]) -> list[tuple]:
    """The largest hierarchical set of terms these cells can estimate: every term, less those (highest order
    first) whose columns the present cells cannot tell from the others."""
    names = list(levels)
    terms = [t for k in range(1, len(names) + 1) for t in itertools.combinations(names, k)]
    cells = frame[names].drop_duplicates()
    kept = []
    for term in terms:  # lower orders first: a term stays if it adds rank, and its sub-terms stayed
        if any(set(sub) < set(term) and sub not in kept for sub in terms):
            continue
        x, _ = design(cells, levels, kept + [term])
        if np.linalg.matrix_rank(x) == x.shape[1]:
            kept.append(term)
    return kept


def robust_ols_model(runs: dict, combos: list, levels: dict) -> Factorial:
    from statsmodels.regression.linear_model import OLS

    frame = pd.DataFrame([dict(zip(levels, c), y=y) for c, values in runs.items() for y in values])
    terms = estimable_terms(frame, levels)
    x, columns = design(frame, levels, terms)
    result = OLS(frame["y"].to_numpy(float), x).fit(cov_type="HC3")
    rows = []
    for term, cols in columns.items():
        restriction = np.zeros((cols.stop - cols.start, x.shape[1]))
        restriction[:, cols] = np.eye(cols.stop - cols.start)
        test = result.f_test(restriction)
        rows.append({"term": " x ".join(term), "df": cols.stop - cols.start, "df_denom": float(result.df_resid),
                     "F": float(np.squeeze(test.fvalue)), "p": float(test.pvalue)})
    missing = [c for c in combos if c not in runs]
    dropped = [" x ".join(t) for k in range(1, len(levels) + 1) for t in itertools.combinations(levels, k)
               if t not in terms]
    note = (f"least squares on {' x '.join(levels)} with robust (HC3) F tests, over the {len(runs)} cells with "
            f"{MIN_RUNS} or more runs that trained ({len(frame)} runs); cells with fewer ("
            + "; ".join(", ".join(map(str, c)) for c in missing) + ") are left out"
            + (f", so these terms cannot be estimated: {', '.join(dropped)}" if dropped else ""))
    fitted = Factorial("robust-ols", note, pd.DataFrame(rows), levels=levels,
                       cell_means={c: float(v.mean()) for c, v in runs.items()})
    fitted.means = cell_average_means(fitted, runs)
    return fitted


def additive_model(runs: dict, combos: list, levels: dict) -> Factorial:
    """Fewer than MIN_RUNS runs that trained in every cell: each level's average of its cells' means, where every
    such cell has one; no tests."""
    few = "one run per cell" if max(len(v) for v in runs.values()) == 1 else f"fewer than {MIN_RUNS} runs per cell"
    fitted = Factorial("additive", f"{few}: seed noise and interactions cannot be told apart, so there are no tests "
                       "or intervals here; each level's mean averages its cells' means, and is not estimable where "
                       "a cell has no run that trained; sweep seeds (e.g. seed=0,1,2) to test them",
                       levels=levels, cell_means={c: float(v.mean()) for c, v in runs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted.means = cell_average_means(fitted, runs)
    return fitted
