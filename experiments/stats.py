"""Statistics for comparing sweep cells: means with t intervals, Welch's and paired t-tests."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass
class Mean:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); nan for n < 2
    low: float  # 95% confidence interval of the mean, by Student's t; nan for n < 2
    high: float


@dataclass
class Difference:
    diff: float  # mean(a) - mean(b)
    low: float
    high: float
    p: float
    n_a: int
    n_b: int
    test: str  # "welch" or "paired"


def t_critical(df: float) -> float:
    return float(stats.t.ppf(0.5 + LEVEL / 2, df))


def mean_ci(values) -> Mean:
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Mean(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Mean(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = t_critical(n - 1) * std / math.sqrt(n)
    return Mean(n, mean, std, mean - half, mean + half)


def welch(a, b) -> Difference:
    """Welch's t-test and interval for mean(a) - mean(b), no equal-variance assumption."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, math.nan, math.nan, math.nan, len(a), len(b), "welch")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return Difference(diff, diff, diff, p, len(a), len(b), "welch")
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = t_critical(df) * se
    return Difference(diff, diff - half, diff + half, p, len(a), len(b), "welch")


def paired(a, b) -> Difference:
    """Paired t-test and interval for mean(a - b); a[i] and b[i] share a seed."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n, diff = len(d), float(d.mean())
    if n < 2:
        return Difference(diff, math.nan, math.nan, math.nan, n, n, "paired")
    sd = float(d.std(ddof=1))
    if sd == 0:
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0, n, n, "paired")
    t = diff / (sd / math.sqrt(n))
    p = float(2 * stats.t.sf(abs(t), n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return Difference(diff, diff - half, diff + half, p, n, n, "paired")


def compare(a: dict, b: dict) -> Difference:
    """a, b: seed -> value. Paired by seed when both have the same seeds (2 or more), else Welch."""
    a = {s: v for s, v in a.items() if math.isfinite(v)}
    b = {s: v for s, v in b.items() if math.isfinite(v)}
    if set(a) == set(b) and len(a) >= 2:
        seeds = sorted(a)
        return paired([a[s] for s in seeds], [b[s] for s in seeds])
    return welch(list(a.values()), list(b.values()))
