"""python -m experiments.bench --claims [N]: how often the summary states a finding that is not there, and how
often it finds one that is, over N simulated sweeps per design (default 1,000).

Each simulated sweep is a runs table as the record gives it (seed noise around 97% test accuracy, failed runs,
per-image answers of the trained networks) put through the summary's own verdict (analysis.family), so what is
counted is what the summary prints: a finding about recipes is any test significant after the family's
correction (the brief and summary.md state exactly those, grouped into findings). Under no true difference the
rate of sweeps with any finding should be at most 5% for each design. The power figures plant one recipe's gap
and count the sweeps that name it. Not a timed test: it prints rates, and the README quotes them.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd

from ..analysis import family

TWO_BY_TWO = {"model": ["classic", "d2l"], "optim": ["adam", "sgd"]}
TWENTY_FOUR = {"model": ["classic", "d2l"], "model.activation": ["relu", "sigmoid", "tanh"],
               "model.pool": ["avg", "max"], "optim": ["adam", "sgd"]}
SD = 0.005  # seed-to-seed spread of test accuracy: half a point (Adam's is a tenth, SGD's several points)
TEST_IMAGES = 10_000


def simulated(rng, factors=TWENTY_FOUR, seeds=3, effect=None, sd=SD, noisy=None, fail=0.0, lost=None):
    """A factorial sweep of pure seed noise around 0.97 (the `noisy` cell's ten times larger), plus effect(cell);
    each run fails (diverges) with probability fail; the `lost` cell lost its last seed's run (it never ran)."""
    rows = []
    for i, values in enumerate(itertools.product(*factors.values())):
        cell = dict(zip(factors, values))
        for seed in range(seeds - (i == lost)):
            noise = rng.normal(0, sd * (10 if i == noisy else 1))
            diverged = rng.random() < fail
            rows.append({**cell, "seed": seed, "status": "FAILED" if diverged else "FINISHED", "closed": False,
                         "diverged": diverged,
                         "test_acc": math.nan if diverged else 0.97 + (effect(cell) if effect else 0) + noise})
    frame = pd.DataFrame(rows)
    frame["best_val_acc"], frame["train_seconds"], frame["test_size"] = frame["test_acc"], 1.0, TEST_IMAGES
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    return frame


def answers(rng, frame: pd.DataFrame) -> dict:
    """Each trained network's right/wrong answer per test image, at its own accuracy: run id -> booleans."""
    return {run: rng.random(TEST_IMAGES) < acc for run, acc in zip(frame["run_id"], frame["test_acc"])
            if math.isfinite(acc)}


# (name, factors, seeds, options): the designs of #29's benchmark
NULL_DESIGNS = [
    ("2x2, 3 seeds", TWO_BY_TWO, 3, {}),
    ("24 recipes, 3 seeds", TWENTY_FOUR, 3, {}),
    ("2x2, 3 seeds, one recipe 10x noisier", TWO_BY_TWO, 3, {"noisy": 1}),
    ("24 recipes, 3 seeds, one recipe 10x noisier", TWENTY_FOUR, 3, {"noisy": 5}),
    ("2x2, 5 seeds, every run fails 1 in 5", TWO_BY_TWO, 5, {"fail": 0.2}),
    ("2x2, 1 seed, networks vary by seed", TWO_BY_TWO, 1, {"networks": True}),
    ("2x2, 3 seeds, a recipe lost a run, networks vary", TWO_BY_TWO, 3, {"networks": True, "lost": 0}),
]


def null_rates(sims: int, rng) -> list[dict]:
    """Per design: the share of sweeps with any finding about recipes, and (where networks are compared) with a
    'differ' line in the trained-networks section, all recipes truly equal."""
    rows = []
    for name, factors, seeds, options in NULL_DESIGNS:
        options = dict(options)
        networks = options.pop("networks", False)
        found = differ = 0
        start = time.perf_counter()
        for _ in range(sims):
            frame = simulated(rng, factors, seeds, **options)
            v = family.verdict(frame, list(factors), answers(rng, frame).get if networks else None,
                               extras=networks)
            found += v.claims() > 0
            differ += bool(len(v.networks)) and bool(v.networks["significant"].any())
        rows.append({"design (no true difference)": name, "sweeps": sims,
                     "with a finding": f"{found / sims:.1%}",
                     "networks 'differ'": f"{differ / sims:.1%}" if networks else "-",
                     "s": f"{time.perf_counter() - start:.0f}"})
    return rows


def power(sims: int, rng) -> list[dict]:
    """The share of 2x2 sweeps that name a planted gap (classic+adam better by k seed sds) as a finding: a
    significant comparison with classic+adam the better recipe, or the model or optim term."""
    rows = []
    for seeds, k in itertools.product((3, 5), (1, 2, 3)):
        gap = k * SD
        planted = lambda c, gap=gap: gap * (c == {"model": "classic", "optim": "adam"})  # noqa: E731
        hit = 0
        for _ in range(sims):
            frame = simulated(rng, TWO_BY_TWO, seeds, effect=planted)
            v = family.verdict(frame, list(TWO_BY_TWO), extras=False)
            hit += any(f.kind in ("accuracy", "term", "interaction") for f in family.findings(v))
        one = one_comparison(rng, sims, seeds, gap)
        rows.append({"seeds per recipe": seeds, "planted gap": f"{gap * 100:.1f} points ({k} sd)",
                     "the sweep names it": f"{hit / sims:.0%}", "one test, Welch": f"{one['welch']:.0%}",
                     "one test, paired on the seed": f"{one['paired']:.0%}"})
    return rows


def one_comparison(rng, sims: int, seeds: int, gap: float, alpha: float = 0.05) -> dict:
    """Power of one two-recipe comparison at alpha: Welch's test (the summary's) against the t-test paired on
    the seed number that it replaced (two recipes' runs of one seed are different networks: independent)."""
    from scipy import stats

    a = rng.normal(gap, SD, (sims, seeds))
    b = rng.normal(0, SD, (sims, seeds))
    return {"welch": float((stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < alpha).mean()),
            "paired": float((stats.ttest_rel(a, b, axis=1).pvalue < alpha).mean())}


def measure(sims: int) -> int:
    from .sweep_timing import fmt_table

    rng = np.random.default_rng(2026)
    nulls = null_rates(sims, rng)
    print(fmt_table(list(nulls[0]), [list(r.values()) for r in nulls]))
    print("\nwith a finding: sweeps whose summary states any difference between recipes (target: at most 5%); "
          "networks 'differ': its trained-networks section, true of those networks, no finding about recipes")
    gains = power(sims, rng)
    print()
    print(fmt_table(list(gains[0]), [list(r.values()) for r in gains]))
    print(f"\nseed-to-seed sd {SD * 100:.1f} points; the sweep: Holm over its 7 tests (4 comparisons, 3 model "
          "terms); one test: at 0.05")
    worst = max(float(r["with a finding"].rstrip("%")) for r in nulls)
    return 0 if worst <= 5.0 else 1
