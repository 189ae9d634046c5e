"""The comparison's statistics against independent computations, and its rules checked on synthetic sweeps
whose truth is known (the record's runs table, as analysis.tables makes it from MLflow)."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway

from experiments.analysis import factorial, family, stats, wording
from experiments.analysis.outcomes import cells, with_outcomes, with_test_intervals
from experiments.analysis.tables import accuracy_pivot
from experiments.benchmarks import claims

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


def test_welch_agrees_with_scipy():
    a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
    b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9]
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    got = stats.welch(a, b)
    assert got.p == pytest.approx(reference.pvalue)
    ci = reference.confidence_interval(0.95)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_constant_cells_are_not_tested_as_if_certain():
    assert stats.welch([0.5] * 3, [0.4] * 3).test == "none"


def test_recipes_are_compared_by_welch_on_every_run_that_trained_not_paired_on_the_seed():
    # Paired on the seed, these two recipes' 3 seeds differ by 0.2, 0.3, 0.25: p=0.024 with 2 degrees of freedom,
    # as if the seed number tied a classic run to a d2l run. Welch's test uses each cell's own spread.
    a, b = {0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.7, 1: 0.5, 2: 0.45}
    d = stats.compare(a, b)
    reference = scipy_stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False)
    assert d.test == "welch" and d.p == pytest.approx(reference.pvalue) and d.p > 0.05
    assert scipy_stats.ttest_rel(list(a.values()), list(b.values())).pvalue < 0.05  # what pairing would claim
    d = stats.compare({0: 0.9, 1: 0.8, 2: 0.7, 3: 0.8}, {0: 0.6, 1: 0.55, 2: 0.5, 4: 0.45})
    assert d.test == "welch" and (d.n_a, d.n_b) == (4, 4)  # no seed left out for want of a partner
    d = stats.compare({0: 0.9, 1: 0.8}, {0: 0.6, 1: 0.55})
    assert d.test == "none" and d.diff == pytest.approx(0.275)  # 2 seeds: too few for a t-test


def test_holm_bh_clopper_pearson_wilson_fisher_and_mcnemar_match_the_libraries():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    holm, levels = family.adjust(p, "holm")
    assert holm[:4] == pytest.approx(multipletests(p[:4], method="holm")[1])  # 0.03, 0.06, 0.06, 0.02 by hand
    assert math.isnan(holm[4]) and levels[:4] == pytest.approx([1 - 0.05 / 3, 0.95, 1 - 0.05 / 2, 1 - 0.05 / 4])
    bh, _ = family.adjust(p, "fdr_bh")
    assert bh[:4] == pytest.approx(multipletests(p[:4], method="fdr_bh")[1])
    assert stats.clopper_pearson(1, 3) == pytest.approx((0.0084038, 0.9057007), abs=1e-6)  # exact binomial table
    assert stats.wilson(924, 1000) == pytest.approx((0.9059044, 0.9388506), abs=1e-6)
    assert stats.fisher(3, 3, 0, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    assert stats.fisher_floor(1, 1) == 1.0 and stats.fisher_floor(3, 3) == pytest.approx(0.1)
    assert stats.fisher_floor(4, 4) == pytest.approx(2 / 70)  # 4 of 4 against 0 of 4: can reach 0.05
    right_a = np.array([True] * 30 + [False] * 5 + [True] * 10 + [False] * 20)
    right_b = np.array([False] * 30 + [True] * 5 + [True] * 10 + [False] * 20)
    p_mc, only_a, only_b = stats.mcnemar(right_a, right_b)
    assert (only_a, only_b) == (30, 5) and p_mc == pytest.approx(2 * scipy_stats.binom.cdf(5, 35, 0.5))


@pytest.mark.parametrize("only_a, only_b", [(30, 5), (12, 4), (9, 3), (5, 5), (0, 0), (1, 0)])
def test_mcnemars_interval_agrees_with_its_test_and_is_never_empty_by_accident(only_a, only_b):
    n = 1000
    low, high = stats.paired_interval(only_a, only_b, n)
    p = scipy_stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    assert low <= (only_a - only_b) / n <= high
    assert (low > 0) == (p < 0.05)  # it excludes 0 exactly when the exact test rejects
    assert high > low or only_a + only_b == 0  # zero width only when the networks agree on every image


def test_welch_james_on_one_factor_is_welchs_anova():
    groups = [np.array([0.97, 0.975, 0.972]), np.array([0.95, 0.99, 0.93, 0.96]), np.array([0.98, 0.981, 0.979])]
    means = np.array([g.mean() for g in groups])
    variances = np.array([g.var(ddof=1) for g in groups])
    n = np.array([len(g) for g in groups])
    f, df1, df2, p = factorial.welch_james(means, variances, n, factorial.contrasts({"x": ["a", "b", "c"]})[("x",)])
    reference = anova_oneway(groups, use_var="unequal")
    assert (f, df1, df2, p) == pytest.approx((reference.statistic, reference.df_num, reference.df_denom,
                                              reference.pvalue))


def as_recorded(frame):
    """A run "DIVERGED" as MLflow records it: FAILED, with the lenet.diverged flag."""
    frame["diverged"] = frame["status"] == "DIVERGED"
    frame["status"] = frame["status"].replace("DIVERGED", "FAILED")
    return frame


def table(rows):
    frame = as_recorded(pd.DataFrame(rows, columns=["model", "optim", "seed", "test_acc", "status"]))
    frame["best_val_acc"], frame["train_seconds"], frame["test_size"] = frame["test_acc"], 1.0, 10000
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    frame["closed"] = False
    return frame


def sentences(v) -> list[str]:
    return wording.findings(v, limit=100)[0] + wording.model_sentences(v)


# The README's real MNIST sweep, as it came out (classic + sgd collapses to 0.1135 on every seed)
MNIST = table([("classic", "adam", s, a, "FINISHED") for s, a in enumerate([0.9871, 0.9876, 0.9879])]
              + [("classic", "sgd", s, 0.1135, "FINISHED") for s in range(3)]
              + [("d2l", "adam", s, a, "FINISHED") for s, a in enumerate([0.9700, 0.9709, 0.9703])]
              + [("d2l", "sgd", s, a, "FINISHED") for s, a in enumerate([0.9641, 0.9453, 0.9592])])


def test_collapsed_runs_are_failures_of_their_recipe_not_accuracy_data():
    v = family.verdict(MNIST, ["model", "optim"])
    shown = v.cells.set_index("cell")
    assert shown.loc["classic+sgd", "collapsed"] == 3 and shown.loc["classic+sgd", "n"] == 0
    assert (shown.loc["classic+sgd", "failure_ci_low"], shown.loc["classic+sgd", "failure_ci_high"]) == \
        pytest.approx((0.2924018, 1.0), abs=1e-6)
    assert shown.loc["classic+sgd", "score_mean"] == pytest.approx(0.10)  # its runs count at chance
    assert wording.headline(v).startswith("Best recipe: classic+adam, score 0.9875")
    said = sentences(v)
    assert not any("-149" in s or "sgd beats" in s or "beats sgd" in s and "classic" in s.split(",")[0] for s in said)
    assert any(s.startswith("on classic, adam vs sgd: no accuracy, not a claim about the recipes (sgd has no run "
                            "that trained)") for s in said)
    # 3 of 3 against 0 of 3 cannot reach 0.05 with Fisher's test (at best p=0.1): it stays out of the family
    assert any("3 and 3 runs cannot show a difference in failure rates" in s for s in said)
    assert v.counts["failures"] == 0


def test_an_unstable_recipe_never_beats_a_stable_one_without_its_failures_in_the_same_sentence():
    sgd = [(0, 0.995), (1, 0.993), (2, 0.996), (3, 0.994), (4, math.nan)]
    runs = table([("classic", "adam", s, a, "FINISHED") for s, a in enumerate([0.990, 0.991, 0.989, 0.990, 0.988])]
                 + [("classic", "sgd", s, a, "FINISHED" if s < 4 else "DIVERGED") for s, a in sgd])
    v = family.verdict(runs, ["optim"])
    (beats,) = [s for s in sentences(v) if " beats " in s]
    assert beats.startswith("sgd beats adam by +0.5 points among runs that trained")
    assert "sgd failed 1 of 5 runs (1 diverged)" in beats  # its failure, in the same sentence
    (fails,) = [s for s in sentences(v) if "failures:" in s]
    assert "failures: sgd 1 of 5 runs (1 diverged), adam 0 of 5" in fails  # each count beside its name


def test_failures_are_compared_where_the_runs_can_show_a_difference():
    runs = table([("classic", "adam", s, 0.99, "FINISHED") for s in range(6)]
                 + [("classic", "sgd", s, math.nan, "DIVERGED") for s in range(6)])
    v = family.verdict(runs, ["optim"])
    (fails,) = [s for s in sentences(v) if "fails more often" in s]
    assert fails.startswith("sgd fails more often than adam: sgd 6 of 6 runs (6 diverged), adam 0 of 6 (Fisher p=")
    assert v.counts == {"accuracy": 0, "failures": 1, "terms": 0}


def test_one_run_per_recipe_makes_no_claim_about_recipes_only_about_the_two_networks():
    runs = table([("classic", "adam", 0, 0.93, "FINISHED"), ("d2l", "adam", 0, 0.90, "FINISHED")])
    rng = np.random.default_rng(0)
    right = {"r0": rng.random(1000) < 0.93, "r1": rng.random(1000) < 0.90}
    v = family.verdict(runs, ["model"], predictions=right.get)
    said = sentences(v)
    assert v.claims() == 0 and not any(" beats " in s or "trained networks" in s for s in said)
    # the networks' comparison is a section of its own, apart from the findings about recipes, which say so once
    header, _, network, _ = wording.network_lines(v)
    assert header.startswith("Trained networks, not recipes: ") and "no finding about the recipes" in header
    assert network.startswith("- the trained networks classic (seed 0) and d2l (seed 0) differ on the same 1,000 "
                              "test images")
    (row,) = v.networks.to_dict("records")
    p, only_a, only_b = stats.mcnemar(right["r0"], right["r1"])
    assert row["p"] == pytest.approx(p) and (row["only_a"], row["only_b"]) == (only_a, only_b)
    assert f"{row['ci_low'] * 100:.1f} to {row['ci_high'] * 100:.1f}" in network  # the CSV holds what it says
    (cell,) = cells(runs[runs.model == "classic"], ["model"]).to_dict("records")
    assert cell["test_acc_interval"] == "Wilson, 10,000 test images"
    assert (cell["test_acc_ci_low"], cell["test_acc_ci_high"]) == pytest.approx(stats.wilson(9300, 10000))
    with_ci = with_test_intervals(runs)
    assert with_ci[["test_acc_low", "test_acc_high"]].to_numpy().ravel() == pytest.approx(
        [*stats.wilson(9300, 10000), *stats.wilson(9000, 10000)])


def test_an_interrupted_run_is_shown_as_such_and_counts_in_no_rate():
    runs = table([("classic", "adam", s, 0.99, "FINISHED") for s in range(3)]
                 + [("classic", "adam", 3, math.nan, "KILLED"), ("classic", "adam", 4, math.nan, "KILLED")])
    runs.loc[4, "closed"] = True  # its process died (closed by the liveness check): a failure; run 3 was a Ctrl-C
    (cell,) = cells(runs, ["model"]).to_dict("records")
    assert (cell["interrupted"], cell["killed"], cell["counted"], cell["failed_runs"]) == (1, 1, 4, 1)
    assert cell["failures"] == "1 killed" and cell["not_counted"] == "1 interrupted"


def test_interval_labels_say_their_level_and_the_csv_holds_the_sentences_numbers():
    v = family.verdict(MNIST, ["model", "optim"])
    row = v.recipes[(v.recipes["kind"] == "accuracy") & v.recipes["significant"]].iloc[0].to_dict()
    said = wording.accuracy_sentence(row, v)
    assert f"{row['level']:.2%} CI, Holm's level for this test".replace(".00%", "%") in said
    assert f"{row['ci_low'] * 100:.1f} to {row['ci_high'] * 100:.1f}" in said
    d = stats.welch([0.9871, 0.9876, 0.9879], [0.9700, 0.9709, 0.9703])
    assert row["ci_low"] == pytest.approx(stats.at_level(d, row["level"]).low)  # at its Holm step, not at 95%


def test_one_empty_cell_keeps_the_estimable_interactions_and_says_which_means_it_cannot_give():
    rng = np.random.default_rng(4)
    rows = []
    for model, optim, act in itertools.product(["classic", "d2l"], ["adam", "sgd"], ["relu", "tanh"]):
        for seed in range(3):
            gap = 0.03 if (model, optim) == ("classic", "adam") else 0.0  # a model x optim interaction
            diverged = (model, optim, act) == ("d2l", "sgd", "tanh")
            rows.append((model, optim, act, seed, math.nan if diverged else 0.95 + gap + rng.normal(0, 0.002),
                         "DIVERGED" if diverged else "FINISHED"))
    runs = as_recorded(pd.DataFrame(rows, columns=["model", "optim", "act", "seed", "test_acc", "status"]))
    runs["best_val_acc"], runs["train_seconds"], runs["test_size"], runs["closed"] = runs["test_acc"], 1, 10000, False
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    v = family.verdict(runs, ["model", "optim", "act"])
    terms = set(v.model.anova["term"])
    assert {"model x optim", "model x act", "optim x act"} <= terms  # only the 3-way term needs the empty cell
    assert "model x optim x act" not in terms
    assert v.model.anova.set_index("term").loc["model x optim", "significant"]
    means = v.model.means.set_index(["factor", "level"])
    assert not means.loc[("model", "d2l"), "estimable"] and means.loc[("act", "relu"), "estimable"]
    assert any(s.startswith("the effect of ") and "(interaction p<0.001 Holm)" in s for s in wording.model_sentences(v))


FACTORS = {"model": ["classic", "d2l"], "act": ["relu", "sigmoid", "tanh"], "pool": ["avg", "max"],
           "optim": ["adam", "sgd"]}


def simulated(rng, factors=FACTORS, seeds=3, **options):
    """A factorial sweep of pure seed noise around 0.97, as `bench --claims` makes them (plus options' effect)."""
    return claims.simulated(rng, factors, seeds, **options)


@pytest.mark.slow
@pytest.mark.parametrize("factors, seeds, noisy", [(FACTORS, 3, None), (FACTORS, 3, 5),
                                                    ({"model": ["c", "d"], "optim": ["a", "s"]}, 5, None),
                                                    ({"model": ["c", "d"], "optim": ["a", "s"]}, 5, 1)])
def test_pure_noise_sweeps_claim_a_difference_in_at_most_5_percent(factors, seeds, noisy):
    # 400 sweeps tell 5% from 10%: at a true 5% more than 7.5% claim in about 1% of runs of this test, at 10%
    # at most 7.5% claim in about 5%. Measured: 4.8%, 5.0%, 4.3%, 3.5% (one cell ten times noisier: 2nd, 4th).
    rng = np.random.default_rng(2026)
    sims = 400
    claims = sum(family.verdict(simulated(rng, factors, seeds, noisy=noisy), list(factors), extras=False).claims() > 0
                 for _ in range(sims))
    assert claims / sims <= 0.075


def test_a_planted_effect_is_found_and_a_planted_interaction_is_named():
    rng = np.random.default_rng(7)
    v = family.verdict(simulated(rng, effect=lambda c: 0.01 if c["pool"] == "max" else 0), list(FACTORS))
    anova = v.model.anova.set_index("term")
    assert anova.loc["pool", "significant"] and not anova.loc["model", "significant"]
    assert any(s.startswith("pool matters: pool=max ") for s in wording.model_sentences(v))
    mixed = simulated(rng, effect=lambda c: 0.02 if (c["model"], c["optim"]) == ("classic", "adam") else 0)
    named = ("the effect of optim depends on model", "the effect of model depends on optim")
    assert any(s.startswith(named) for s in wording.model_sentences(family.verdict(mixed, list(FACTORS))))


def test_one_fact_stated_by_several_tests_is_one_finding():
    # max pooling 3 points better everywhere: the pool comparison in many contexts and the pool term are one fact
    rng = np.random.default_rng(11)
    v = family.verdict(simulated(rng, effect=lambda c: 0.03 if c["pool"] == "max" else 0), list(FACTORS))
    found = family.findings(v)
    assert v.claims() >= 3 and [(f.kind, f.factor, f.better, f.worse) for f in found] == \
        [("accuracy", "pool", "max", "avg")]
    assert len(found[0].rows) == v.claims() - 1 and found[0].term["term"] == "pool"
    assert wording.family_sentence(v).startswith(f"Claims: 1 finding from {v.claims()} of {v.tests} tests significant")


def test_one_seed_per_cell_says_what_cannot_be_estimated():
    v = family.verdict(simulated(np.random.default_rng(3), seeds=1), list(FACTORS))
    assert v.model.note.startswith("one run per cell: seed noise and interactions cannot be told apart")
    assert v.model.anova.empty and v.model.means["ci_low"].isna().all() and v.claims() == 0


def test_large_sweeps_say_the_most_and_cap_the_rest():
    v = family.verdict(simulated(np.random.default_rng(9), seeds=5, effect=lambda c: 0.03 * (c["pool"] == "max")),
                       list(FACTORS))
    said, more = wording.findings(v, limit=8)
    assert len(said) == 8 and more == len(v.recipes) - 8
    significant = int(v.recipes["significant"].sum())
    assert 0 < significant and all(" beats " in s for s in said[:min(significant, 8)])  # findings come first
    assert "Holm's correction over every test in this summary (60 comparisons of accuracy, 0 of failure rates, 15 " \
           "model terms)" in wording.family_sentence(v)


def test_probability_of_improvement_iqm_and_effect_size_are_reported():
    v = family.verdict(MNIST, ["model", "optim"])
    row = v.recipes[(v.recipes["kind"] == "accuracy") & (v.recipes["context"] == "adam")].iloc[0]
    assert row["prob_improvement"] == 1.0 and row["hedges_g"] > 5  # every classic run above every d2l run
    shown = v.cells.set_index("cell")
    assert shown.loc["d2l+sgd", "test_acc_iqm"] == pytest.approx(scipy_stats.trim_mean([0.9641, 0.9453, 0.9592], 0.25))


def test_the_pivot_shows_a_recipe_whose_runs_all_failed_as_empty_not_as_never_swept():
    runs = with_outcomes(table([("classic", "adam", 0, 0.98, "FINISHED"), ("classic", "sgd", 0, 0.1135, "FINISHED"),
                                ("d2l", "adam", 0, 0.97, "FINISHED"), ("d2l", "sgd", 0, 0.11, "FINISHED")]))
    pivot = accuracy_pivot(runs)
    assert (list(pivot.index), list(pivot.columns)) == (["classic", "d2l"], ["adam", "sgd"])
    assert pivot["sgd"].isna().all() and pivot.loc["classic", "adam"] == pytest.approx(0.98)


def test_numeric_levels_sort_as_numbers_and_print_distinctly():
    sizes, lrs = [512, 64, 256, 128], [0.0002, 0.00021]
    rows = [{"trainer.batch_size": b, "optim.lr": lr, "seed": s, "status": "FINISHED", "closed": False,
             "test_acc": 0.97} for b in sizes for lr in lrs for s in range(2)]
    runs = pd.DataFrame(rows)
    runs["best_val_acc"], runs["train_seconds"], runs["test_size"] = runs["test_acc"], 1.0, 10000
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    shown = cells(runs, ["trainer.batch_size", "optim.lr"])
    assert list(shown["trainer.batch_size"].drop_duplicates()) == [64, 128, 256, 512]  # not 128, 256, 512, 64
    assert len(set(shown["cell"])) == 8 and "trainer.batch_size=64+optim.lr=0.00021" in set(shown["cell"])
    model = family.verdict(runs, ["trainer.batch_size", "optim.lr"]).model
    assert model.levels["trainer.batch_size"] == [64, 128, 256, 512]  # the factorial model's order too


def test_the_exact_tests_a_one_seed_sweep_uses_match_scipy_and_statsmodels_across_their_range():
    # stats computes these without importing scipy or statsmodels (a 1-seed sweep's summary makes no t test)
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(0, 1), (1, 1), (0, 3), (1, 3), (2, 5), (5, 5), (17, 40), (924, 1000), (9931, 10000), (3, 10000)]:
        assert stats.clopper_pearson(k, n) == pytest.approx(proportion_confint(k, n, method="beta"), abs=1e-9)
        assert stats.wilson(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)
    for only_a, only_b in [(0, 0), (1, 0), (5, 5), (30, 5), (615, 28), (4000, 3900)]:
        right_a = np.array([True] * only_a + [False] * only_b + [True] * 7)
        right_b = np.array([False] * only_a + [True] * only_b + [True] * 7)
        reference = mcnemar([[7, only_a], [only_b, 0]], exact=True).pvalue
        assert stats.mcnemar(right_a, right_b)[0] == pytest.approx(reference, rel=1e-9, abs=1e-300)
    for table in [(0, 1, 1, 1), (1, 1, 0, 1), (3, 3, 0, 3), (2, 5, 0, 4), (1, 6, 4, 6), (7, 20, 2, 25), (0, 4, 0, 4)]:
        fail_a, n_a, fail_b, n_b = table
        reference = scipy_stats.fisher_exact([[fail_a, n_a - fail_a], [fail_b, n_b - fail_b]]).pvalue
        assert stats.fisher(*table) == pytest.approx(reference, rel=1e-9)
    values = np.random.default_rng(1).normal(size=(50, 7))
    assert stats.middle_half_mean(values) == pytest.approx(scipy_stats.trim_mean(values, 0.25, axis=1))


def test_the_seeds_advice_is_a_range_that_holds_the_true_number_as_often_as_it_says():
    # A 1-point gap and a 1-point seed-to-seed sd need 17 seeds per cell; estimated from 3 runs per cell, the
    # single number printed before ranged 6 to 79 (10-90%). The range from the spread's own uncertainty (80%)
    # holds the true 17 in about 80% of sweeps.
    truth = stats.seeds_needed(0.01, 0.01)
    assert truth == 17
    rng = np.random.default_rng(29)
    held, widths = 0, []
    for _ in range(1000):
        a, b = rng.normal(0.98, 0.01, 3), rng.normal(0.97, 0.01, 3)
        sd = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        fewest, most = stats.seeds_range(0.01, sd, 4)
        held += fewest <= truth <= (most or math.inf)
        widths.append((most or 1000) / fewest)
    assert 0.75 <= held / 1000 <= 0.85
    assert 6 <= np.median(widths) <= 9  # the 0.51x-3.8x of the spread's 80% range, squared
    assert stats.seeds_range(0.01, 0.01, 400) in {(16, 18), (16, 19), (17, 18)}


def test_an_inconclusive_comparison_gives_the_seeds_it_needs_as_a_range():
    class Family:
        tests, correction = 1, "holm"

    row = {"diff": 0.01, "sd": 0.01, "test": "welch", "df": 4.0}
    said = wording.power(row, Family())
    assert said.startswith("; 10 to 61 seeds per cell would detect a gap of 1.0 points with 80% power at alpha 0.05")
    assert "the true seed-to-seed sd is anywhere in the 80% range that 1.0 points over 4 degrees of freedom allows" \
        in said


def test_a_factor_that_matters_on_the_runs_that_trained_says_how_many_of_its_runs_failed():
    # sgd beats adam by 1 point on both models among the runs that trained, but fails 1 run in 5 (diverged).
    rows = []
    for model, base in (("classic", 0.985), ("d2l", 0.975)):
        for seed in range(5):
            rows.append((model, "adam", seed, base + 0.0005 * (seed % 3), "FINISHED"))
            rows.append((model, "sgd", seed, base + 0.01 + 0.0005 * (seed % 3),
                         "DIVERGED" if seed == 4 else "FINISHED"))
    v = family.verdict(table(rows), ["model", "optim"])
    (optim,) = [s for s in wording.model_sentences(v) if s.startswith("optim matters")]
    assert "sgd failed 2 of 10 runs (2 diverged), adam 0 of 10" in optim, optim
    assert "; the means are of the runs that trained: sgd failed" in optim


@pytest.mark.slow  # 15 s: the networks' designs bootstrap
def test_the_claims_benchmark_prints_each_designs_false_finding_rate_and_the_power(capsys):
    claims.measure(4)
    out = capsys.readouterr().out
    for name, *_ in claims.NULL_DESIGNS:
        assert f"| {name} " in out
    assert "| 3                | 1.5 points (3 sd) |" in out and "one test, paired on the seed" in out
