"""The comparison's statistics, against independent computations and simulated sweeps with a fixed seed."""
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as scipy_stats

from experiments.analysis import compare, factorial, stats

T_975_DF2 = 4.302652729911275  # Student's t table, 97.5th percentile, 2 degrees of freedom


def test_mean_and_interval_of_three_values_and_none_from_two():
    m = stats.mean_ci([0.97, 0.98, 0.99])
    assert (m.n, m.mean, m.std) == (3, pytest.approx(0.98), pytest.approx(0.01))
    assert m.low == pytest.approx(0.98 - T_975_DF2 * 0.01 / math.sqrt(3))
    assert m.high == pytest.approx(0.98 + T_975_DF2 * 0.01 / math.sqrt(3))
    two = stats.mean_ci([0.5, 0.6])
    assert two.n == 2 and math.isnan(two.low) and math.isnan(two.high)  # 2 values: no interval
    assert stats.mean_ci([0.5, math.nan]).n == 1


def test_an_accuracy_interval_is_clipped_to_0_1_and_says_so():
    m = stats.mean_ci([0.99, 1.0, 1.0], bounds=(0, 1))
    assert m.high == 1.0 and m.clipped
    assert m.low == pytest.approx(m.mean - T_975_DF2 * m.std / math.sqrt(3))  # the low end is the t interval's


def test_paired_and_welch_agree_with_scipy():
    a, b = [0.990, 0.985, 0.992], [0.970, 0.972, 0.969]
    got = stats.paired(a, b)
    assert got.p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    ci = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
    b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9]
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    got = stats.welch(a, b)
    assert got.p == pytest.approx(reference.pvalue)
    ci = reference.confidence_interval(0.95)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_constant_cells_are_not_tested_as_if_certain():
    assert stats.paired([0.1135] * 3, [0.0980] * 3).test == "none"  # same gap on every seed: t undefined
    assert stats.welch([0.5] * 3, [0.4] * 3).test == "none"


def test_pairs_on_the_seeds_both_cells_finished_and_says_which_were_left_out():
    d, left = stats.compare({0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.6, 1: 0.5, 2: 0.45})
    assert d.test == "paired" and left == []
    d, left = stats.compare({0: 0.9, 1: 0.8, 2: 0.7, 3: 0.8}, {0: 0.6, 1: 0.55, 2: 0.5, 4: 0.45})
    assert d.test == "paired" and d.n_a == 3 and left == [3, 4]
    d, left = stats.compare({0: 0.9, 1: 0.8}, {0: 0.6, 1: 0.55})
    assert d.test == "none" and d.diff == pytest.approx(0.275)  # 2 seeds: too few for a t-test


def test_holm_clopper_pearson_wilson_fisher_and_mcnemar_match_the_textbook_values():
    # Holm by hand: sorted 0.005*4, 0.01*3, 0.03*2, max(0.06, 0.04*1)
    assert list(stats.holm([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_levels([0.01, 0.04, 0.03, 0.005]) == pytest.approx([1 - 0.05 / 3, 0.95, 1 - 0.05 / 2,
                                                                            1 - 0.05 / 4])
    assert stats.clopper_pearson(1, 3) == pytest.approx((0.0084038, 0.9057007), abs=1e-6)  # exact binomial table
    assert stats.clopper_pearson(3, 3) == pytest.approx((0.2924018, 1.0), abs=1e-6)
    assert stats.wilson(924, 1000) == pytest.approx((0.9059044, 0.9388506), abs=1e-6)
    assert stats.fisher(3, 3, 0, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    right_a = np.array([True] * 30 + [False] * 5 + [True] * 10 + [False] * 20)
    right_b = np.array([False] * 30 + [True] * 5 + [True] * 10 + [False] * 20)
    p, only_a, only_b = stats.mcnemar(right_a, right_b)
    assert (only_a, only_b) == (30, 5) and p == pytest.approx(2 * scipy_stats.binom.cdf(5, 35, 0.5))


def table(rows):
    frame = pd.DataFrame(rows, columns=["model", "optim", "seed", "test_acc", "status"])
    frame["best_val_acc"], frame["train_seconds"], frame["test_size"] = frame["test_acc"], 1.0, 10000
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    return frame


# The README's real MNIST sweep, as it came out (classic + sgd collapses to 0.1135 on every seed)
MNIST = table([("classic", "adam", s, a, "FINISHED") for s, a in enumerate([0.9871, 0.9876, 0.9879])]
              + [("classic", "sgd", s, 0.1135, "FINISHED") for s in range(3)]
              + [("d2l", "adam", s, a, "FINISHED") for s, a in enumerate([0.9700, 0.9709, 0.9703])]
              + [("d2l", "sgd", s, a, "FINISHED") for s, a in enumerate([0.9641, 0.9453, 0.9592])])


def test_the_factorial_finds_the_interaction_main_effects_miss():
    model = factorial.fit(MNIST, ["model", "optim"])
    reference = sm.stats.anova_lm(smf.ols("test_acc ~ C(model, Sum) * C(optim, Sum)", MNIST).fit(), typ=3)
    anova = model.anova.set_index("term")
    assert anova.loc["model x optim", "F"] == pytest.approx(reference.loc["C(model, Sum):C(optim, Sum)", "F"])
    assert anova.loc["model", "p"] == pytest.approx(reference.loc["C(model, Sum)", "PR(>F)"])
    (said,) = model.interactions
    assert said.startswith("the effect of optim depends on model: adam - sgd is +87.4 points on classic; "
                           "adam - sgd is +1.4 points on d2l")
    means = model.means.set_index(["factor", "level"])
    classic = MNIST[MNIST.model == "classic"].groupby("optim")["test_acc"].mean().mean()
    assert means.loc[("model", "classic"), "emm"] == pytest.approx(classic)  # averaged over optim equally
    assert means["ci_low"].notna().all() and (means["ci_high"] <= 1).all()


def test_collapsed_runs_are_failures_of_their_cell_with_an_exact_interval():
    cells = compare.cells(MNIST, ["model", "optim"]).set_index("cell")
    assert cells.loc["classic, sgd", "collapsed"] == 3 and cells.loc["classic, sgd", "failure_rate"] == 1.0
    assert (cells.loc["classic, sgd", "failure_ci_low"], cells.loc["classic, sgd", "failure_ci_high"]) == \
        pytest.approx((0.2924018, 1.0), abs=1e-6)
    assert cells.loc["classic, adam", "failure_rate"] == 0


def test_sentences_keep_their_form_with_holm_adjusted_p_and_say_what_is_inconclusive():
    found = compare.comparisons(MNIST, ["model", "optim"])
    by = {(r["factor"], r["context"], r["kind"]): r for r in found.to_dict("records")}
    beats = by[("model", "adam", "accuracy")]
    assert beats["significant"] and beats["p_holm"] >= beats["p"]
    assert beats["sentence"].startswith("on adam, classic beats d2l by +1.7 points (95% CI ")
    assert beats["sentence"].endswith("Holm, n=3 each)")
    collapsed = by[("optim", "classic", "accuracy")]  # sgd is 0.1135 on every seed; adam's spread is the noise
    assert collapsed["significant"] and collapsed["sentence"].startswith("on classic, adam beats sgd by +87.4 points")
    d2l = by[("optim", "d2l", "accuracy")]
    assert not d2l["significant"] and "inconclusive at n=3" in d2l["sentence"]
    assert "seeds per cell would detect a gap of 1.4 points" in d2l["sentence"]
    failures = by[("optim", "classic", "failures")]
    assert failures["sentence"].startswith("on classic, adam vs sgd, failures: 3 of 3 runs failed (3 collapsed) vs "
                                           "0 of 3; inconclusive (Fisher p=")


def test_two_constant_cells_are_not_declared_different_with_certainty():
    runs = table([("classic", "sgd", s, 0.1135, "FINISHED") for s in range(3)]
                 + [("d2l", "sgd", s, 0.0980, "FINISHED") for s in range(3)])
    (row,) = compare.comparisons(runs, ["model"]).query("kind == 'accuracy'").to_dict("records")
    assert row["test"] == "none" and not row["significant"]
    assert row["sentence"] == ("classic vs d2l: +1.6 points, not testable (no seed-to-seed variation; no "
                               "test-set predictions to compare)")


def test_a_failed_seed_is_counted_and_the_pairing_says_what_it_left_out():
    sgd = [(0, 0.995, "FINISHED"), (1, 0.993, "FINISHED"), (2, 0.996, "FINISHED"), (3, math.nan, "DIVERGED")]
    runs = table([("classic", "adam", s, a, "FINISHED") for s, a in enumerate([0.990, 0.991, 0.989, 0.990])]
                 + [("classic", "sgd", s, a, st) for s, a, st in sgd])
    found = compare.comparisons(runs, ["optim"]).set_index("kind")
    assert found.loc["accuracy", "n_a"] == 3 and found.loc["accuracy", "left_out_seeds"] == "3"
    assert "paired on 3 seeds; seed 3 left out" in found.loc["accuracy", "sentence"]
    assert "1 of 4 runs failed (1 diverged) vs 0 of 4" in found.loc["failures", "sentence"]
    cells = compare.cells(runs, ["optim"]).set_index("cell")
    assert cells.loc["sgd", "diverged"] == 1 and cells.loc["sgd", "n"] == 3


def test_two_seeds_are_too_few_for_a_t_test_and_say_their_values():
    runs = table([("classic", "adam", s, a, "FINISHED") for s, a in enumerate([0.614, 0.732])]
                 + [("d2l", "adam", s, a, "FINISHED") for s, a in enumerate([0.640, 0.700])])
    (row,) = compare.comparisons(runs, ["model"]).to_dict("records")
    assert row["test"] == "none" and "CI" not in row["sentence"]
    assert "n=2 and 2: too few runs for a t-test, values 0.6140, 0.7320 vs 0.6400, 0.7000" in row["sentence"]


def test_single_runs_are_compared_by_mcnemar_on_their_predictions():
    runs = table([("classic", "adam", 0, 0.93, "FINISHED"), ("d2l", "adam", 0, 0.90, "FINISHED")])
    rng = np.random.default_rng(0)
    right = {"r0": rng.random(1000) < 0.93, "r1": rng.random(1000) < 0.90}
    found = compare.comparisons(runs, ["model"], predictions=right.get)
    (row,) = found.to_dict("records")
    assert row["test"] == "mcnemar" and row["test_images"] == 1000
    p, only_a, only_b = stats.mcnemar(right["r0"], right["r1"])
    assert row["p"] == pytest.approx(p) and (row["only_a"], row["only_b"]) == (only_a, only_b)
    assert "McNemar on the same 1,000 test images" in row["sentence"]
    (cell,) = compare.cells(runs[runs.model == "classic"], ["model"]).to_dict("records")
    assert cell["test_acc_interval"] == "Wilson, 10,000 test images"
    assert (cell["test_acc_ci_low"], cell["test_acc_ci_high"]) == pytest.approx(stats.wilson(9300, 10000))
    # every run, in the exported runs table, carries its own test-set interval
    with_ci = compare.with_test_intervals(runs)
    assert with_ci[["test_acc_low", "test_acc_high"]].to_numpy().ravel() == pytest.approx(
        [*stats.wilson(9300, 10000), *stats.wilson(9000, 10000)])


FACTORS = {"model": ["classic", "d2l"], "act": ["relu", "sigmoid", "tanh"], "pool": ["avg", "max"],
           "optim": ["adam", "sgd"]}


def simulated(rng, effect=None, seeds=3, sd=0.005):
    """A 24-cell factorial sweep of pure seed noise around 0.97, plus effect(cell) if given."""
    rows = []
    for values in pd.MultiIndex.from_product(list(FACTORS.values())):
        cell = dict(zip(FACTORS, values))
        for seed in range(seeds):
            rows.append({**cell, "seed": seed, "status": "FINISHED",
                         "test_acc": 0.97 + (effect(cell) if effect else 0) + rng.normal(0, sd)})
    frame = pd.DataFrame(rows)
    frame["best_val_acc"], frame["train_seconds"], frame["run_id"] = frame["test_acc"], 1.0, range(len(frame))
    return frame


def test_pure_noise_sweeps_rarely_say_anything_beats_anything(monkeypatch):
    import gc

    monkeypatch.setattr(gc, "collect", lambda *args: 0)  # statsmodels' Holm calls it: 80 ms each in this process
    rng = np.random.default_rng(2026)
    sims = 200
    any_beats = sum(compare.comparisons(simulated(rng), list(FACTORS), describe=False)["significant"].any()
                    for _ in range(sims))
    assert any_beats / sims <= 0.08  # Holm keeps the family-wise rate at 5% (93% of sweeps without it)


def test_a_planted_effect_is_found_and_a_planted_interaction_is_named():
    rng = np.random.default_rng(7)
    pool = simulated(rng, effect=lambda c: 0.01 if c["pool"] == "max" else 0)
    model = factorial.fit(pool, list(FACTORS))
    assert model.anova.set_index("term").loc["pool", "p_holm"] < 0.001
    assert model.anova.set_index("term").loc["model", "p_holm"] > 0.05
    mixed = simulated(rng, effect=lambda c: 0.02 if (c["model"], c["optim"]) == ("classic", "adam") else 0)
    model = factorial.fit(mixed, list(FACTORS))
    named = ("the effect of optim depends on model", "the effect of model depends on optim")
    assert any(s.startswith(named) for s in model.interactions)


def test_one_seed_per_cell_says_what_cannot_be_estimated():
    model = factorial.fit(simulated(np.random.default_rng(3), seeds=1), list(FACTORS))
    assert model.note.startswith("one run per cell: seed noise and interactions cannot be told apart")
    assert model.anova.empty and model.means["ci_low"].isna().all()
