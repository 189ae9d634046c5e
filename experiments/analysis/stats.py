"""The tests and intervals a sweep's comparison uses.

Means get Student t intervals (only from 3 or more values), proportions exact (Clopper-Pearson)
or Wilson intervals, two cells Welch's t-test, two trained networks McNemar's exact
test with the exact interval that matches it, failure rates Fisher's exact test; the interquartile
mean and the probability of improvement (as rliable reports them) with bootstrap intervals, and
Hedges' g. `seeds_needed` turns an inconclusive comparison into a sample size, and `seeds_range` into the
range of sizes the spread, known from few runs, allows.

What a 1-seed sweep needs (a proportion's interval, McNemar's and Fisher's exact tests) is computed here from
the exact binomial and hypergeometric distributions (tests/unit/test_compare.py checks each against scipy and
statsmodels); t, F and power come from scipy and statsmodels, imported where a test is made, so that a sweep that
makes none does not pay their 1.3 s import.
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

LEVEL = 0.95
ALPHA = 1 - LEVEL
MIN_FOR_INTERVAL = 3  # fewer values than this: the values are shown, not an interval


@dataclass
class Mean:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); nan for n < 2
    low: float  # 95% t interval of the mean, clipped to bounds; nan for n < MIN_FOR_INTERVAL
    high: float
    clipped: bool = False  # the t interval passed a bound (0 or 1 for an accuracy) and was cut there


@dataclass
class Difference:
    diff: float  # mean(a) - mean(b)
    low: float  # interval at `level` (a comparison's Holm level once adjusted)
    high: float
    p: float
    n_a: int
    n_b: int
    test: str  # "welch", "mcnemar", or "none" (not testable)
    se: float = math.nan  # standard error of diff (t tests)
    df: float = math.nan  # degrees of freedom (t tests)
    sd: float = math.nan  # spread the power estimate uses: the two cells' pooled


def t_critical(df: float, level: float = LEVEL) -> float:
    from scipy import special

    return float(special.stdtrit(df, 0.5 + level / 2))  # stats.t.ppf, without its per-call overhead


def t_sf2(df: float, t: float) -> float:
    """Two-sided p of Student's t statistic t."""
    from scipy import special

    return float(2 * special.stdtr(df, -abs(t)))  # 2 * stats.t.sf


def fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def mean_ci(values, bounds: tuple[float, float] | None = None) -> Mean:
    """Mean, std and a t interval; bounds (e.g. (0, 1) for an accuracy) clip the interval and say so."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return Mean(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n < MIN_FOR_INTERVAL:
        return Mean(n, mean, std, math.nan, math.nan)
    half = t_critical(n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    clipped = bounds is not None and (low < bounds[0] or high > bounds[1])
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Mean(n, mean, std, low, high, clipped)


def welch(a, b) -> Difference:
    """Welch's t-test and interval for mean(a) - mean(b), no equal-variance assumption."""
    a, b = finite(a), finite(b)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, math.nan, math.nan, math.nan, len(a), len(b), "none")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if se <= 1e-12:  # both constant (to rounding): no spread to test against
        return Difference(diff, math.nan, math.nan, math.nan, len(a), len(b), "none", 0.0, math.nan, 0.0)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    p = t_sf2(df, diff / se)
    half = t_critical(df) * se
    return Difference(diff, diff - half, diff + half, p, len(a), len(b), "welch", se, df, pooled)


def compare(a: dict, b: dict) -> Difference:
    """a, b: seed -> value. Welch's test from MIN_FOR_INTERVAL values each (fewer: test "none", and the caller
    says so). Not paired on the seed: two recipes' runs of one seed share the validation split and the batch
    order (one model under two optimizers, its starting weights too), but they are two networks, and a t-test
    paired on 3 seeds has 2 degrees of freedom where Welch's has up to 4: for a gap of 3 seed sds at 3 seeds each,
    power 67% against 50% (`bench --claims`, 2026-12-03). A correlation the shared seed did induce, if positive,
    only makes Welch's test cautious."""
    a = [v for v in a.values() if math.isfinite(v)]
    b = [v for v in b.values() if math.isfinite(v)]
    if min(len(a), len(b)) >= MIN_FOR_INTERVAL:
        return welch(a, b)
    diff = float(np.mean(a) - np.mean(b)) if a and b else math.nan
    return Difference(diff, math.nan, math.nan, math.nan, len(a), len(b), "none")


def at_level(d: Difference, level: float) -> Difference:
    """d with its t interval recomputed at another confidence level (a Holm step's)."""
    if not math.isfinite(d.se) or not math.isfinite(d.df) or d.se == 0:
        return d
    half = t_critical(d.df, level) * d.se
    return Difference(d.diff, d.diff - half, d.diff + half, d.p, d.n_a, d.n_b, d.test, d.se, d.df, d.sd)


def paired_interval(only_a: int, only_b: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Interval of accuracy(a) - accuracy(b) on n shared samples that matches McNemar's exact test: the
    Clopper-Pearson interval of the share of the discordant samples a got right, scaled to the difference
    (it excludes 0 exactly when the exact test rejects at 1 - level)."""
    m = only_a + only_b
    if m == 0:
        return 0.0, 0.0
    low, high = clopper_pearson(only_a, m, level)
    return (2 * low - 1) * m / n, (2 * high - 1) * m / n


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """McNemar's exact test that two models are equally accurate on the same test samples:
    p, and the samples only a got right, only b got right."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    # statsmodels' mcnemar(exact=True): the binomial test of the discordant samples at 1/2
    return min(1.0, 2 * binomial_cdf(min(only_a, only_b), only_a + only_b, 0.5)), only_a, only_b


def fisher(fail_a: int, n_a: int, fail_b: int, n_b: int) -> float:
    """Fisher's exact test that two cells fail equally often: two-sided, as scipy's fisher_exact, the chance of
    every table with these margins that is at most as likely as this one."""
    total, failures = n_a + n_b, fail_a + fail_b
    ways = [math.comb(failures, x) * math.comb(total - failures, n_a - x)  # tables by a's failures x
            for x in range(max(0, failures - n_b), min(failures, n_a) + 1)]
    seen = math.comb(failures, fail_a) * math.comb(total - failures, n_a - fail_a)
    return min(1.0, sum(w for w in ways if w <= seen * (1 + 1e-7)) / math.comb(total, n_a))


def fisher_floor(n_a: int, n_b: int) -> float:
    """The smallest p Fisher's test can give for failures among n_a runs vs n_b (one cell failing every run, the
    other none): a comparison that cannot reach the family's level stays out of it (1 run vs 1 run: 1.0)."""
    if n_a == 0 or n_b == 0:
        return 1.0
    return min(fisher(n_a, n_a, 0, n_b), fisher(0, n_a, n_b, n_b))


def binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X <= k), or P(X >= k) when upper, for X ~ Binomial(n, p), summed term by term in logs."""
    if n == 0 or p in (0.0, 1.0):
        at = 0 if p == 0.0 else n  # all of the mass at one count
        return float(at >= k if upper else at <= k)
    i = np.arange(k, n + 1) if upper else np.arange(0, min(k, n) + 1)
    if len(i) == 0:
        return 0.0
    log_factorial = log_factorials(n)
    terms = log_factorial[n] - log_factorial[i] - log_factorial[n - i] + i * math.log(p) + (n - i) * math.log1p(-p)
    return float(min(1.0, np.exp(terms).sum()))


@functools.lru_cache(maxsize=8)
def log_factorials(n: int) -> np.ndarray:
    """log(0!), ..., log(n!): made once per n, not at each of a bisection's steps (clopper_pearson)."""
    table = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    table.flags.writeable = False  # shared by every caller
    return table


def binomial_cdf(k: int, n: int, p: float) -> float:
    return binomial_tail(k, n, p, upper=False)


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact interval of a proportion k/n (statsmodels' method="beta"): the p at which k or more, and k or fewer,
    successes each have probability (1 - level) / 2, found by bisection on the binomial's tails."""
    if n == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2

    def solve(reached) -> float:  # the p in (0, 1) where reached(p) turns true; reached is monotone in p
        low, high = 0.0, 1.0
        for _ in range(80):
            mid = (low + high) / 2
            low, high = (low, mid) if reached(mid) else (mid, high)
        return (low + high) / 2

    low = 0.0 if k == 0 else solve(lambda p: binomial_tail(k, n, p, upper=True) >= tail)
    high = 1.0 if k == n else solve(lambda p: binomial_cdf(k, n, p) <= tail)
    return low, high


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion: one run's accuracy on n test samples (test-set noise); statsmodels'
    proportion_confint(method="wilson")."""
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    share, z2 = k / n, z * z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def hedges_g(a, b) -> float:
    """Standardised mean difference of a and b with Hedges' small-sample correction (nan below 2 values each)."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    if pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (len(a) + len(b)) - 9)))


BOOTSTRAP = 2000  # resamples for the bootstrap intervals below


def middle_half_mean(x: np.ndarray) -> np.ndarray:
    """scipy.stats.trim_mean(x, 0.25, axis=-1): the mean once a quarter of the values (rounded down) is cut from
    each end."""
    cut = int(0.25 * x.shape[-1])
    return np.sort(x, axis=-1)[..., cut:x.shape[-1] - cut].mean(axis=-1)


def iqm(values) -> tuple[float, float, float]:
    """The interquartile mean (the mean of the middle half) and its 95% bootstrap interval over runs (nan below
    3 values): rliable's robust summary of a recipe across seeds."""
    x = finite(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    point = float(middle_half_mean(x))
    if len(x) < MIN_FOR_INTERVAL:
        return point, math.nan, math.nan
    boot = middle_half_mean(np.random.default_rng(0).choice(x, size=(BOOTSTRAP, len(x))))
    return point, float(np.quantile(boot, ALPHA / 2)), float(np.quantile(boot, 1 - ALPHA / 2))


def prob_improvement(a, b) -> tuple[float, float, float]:
    """P(a run of a scores above a run of b) over every pair of runs (ties count half), with its 95% bootstrap
    interval over runs (nan below 3 values each): rliable's probability of improvement."""
    a, b = finite(a), finite(b)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, math.nan

    def p(x, y):  # x: (..., n), y: (..., m)
        return ((x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])).mean(axis=(-1, -2))

    point = float(p(a, b))
    if min(len(a), len(b)) < MIN_FOR_INTERVAL:
        return point, math.nan, math.nan
    rng = np.random.default_rng(0)
    boot = p(rng.choice(a, size=(BOOTSTRAP, len(a))), rng.choice(b, size=(BOOTSTRAP, len(b))))
    return point, float(np.quantile(boot, ALPHA / 2)), float(np.quantile(boot, 1 - ALPHA / 2))


def seeds_needed(gap: float, sd: float, alpha: float = ALPHA, power: float = 0.8) -> int | None:
    """Runs per cell for a two-sided two-sample t-test at alpha to find a gap this large with this power,
    given the seed-to-seed spread sd (pooled); None if it cannot be said."""
    if not (math.isfinite(gap) and math.isfinite(sd)) or gap == 0 or sd <= 0:
        return None
    effect = abs(gap) / sd
    from statsmodels.stats.power import TTestIndPower

    solver = TTestIndPower()
    try:
        with warnings.catch_warnings():  # a solver that does not converge says so by returning nan
            warnings.simplefilter("ignore")
            n = solver.solve_power(effect_size=effect, alpha=alpha, power=power)
    except Exception:  # no solution in the solver's range
        return None
    n = float(np.asarray(n).item())
    return max(2, math.ceil(n)) if math.isfinite(n) else None


def seeds_range(gap: float, sd: float, df: float, alpha: float = ALPHA, power: float = 0.8,
                coverage: float = 0.8) -> tuple[int | None, int | None]:
    """(fewest, most) runs per cell seeds_needed asks for when the true spread is anywhere in the central
    `coverage` interval that sd, estimated with df degrees of freedom, allows (sd^2 df / sigma^2 is chi-square):
    with 3 runs per cell (4 degrees of freedom) the spread is known only within 0.72x-1.94x, and the runs needed
    within 0.51x-3.8x. most None: more than
    the solver can say (then the fewest is a lower bound)."""
    if not (math.isfinite(df) and df > 0 and math.isfinite(sd) and sd > 0 and math.isfinite(gap) and gap != 0):
        return None, None
    from scipy.stats import chi2

    tail = (1 - coverage) / 2
    low_sd, high_sd = sd * math.sqrt(df / chi2.ppf(1 - tail, df)), sd * math.sqrt(df / chi2.ppf(tail, df))
    # A gap many spreads wide needs the fewest runs a test takes; the solver finds no n below 2.
    return seeds_needed(gap, low_sd, alpha, power) or 2, seeds_needed(gap, high_sd, alpha, power)
