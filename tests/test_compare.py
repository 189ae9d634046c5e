"""Statistics checked against values computed independently, and cells grouped by all but the seed."""
import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from experiments import compare, stats

T_975_DF2 = 4.302652729911275  # Student's t table, 97.5th percentile, 2 degrees of freedom


def two_sided_p_df2(t: float) -> float:
    """Closed form for 2 degrees of freedom: P(|T| > t) = 1 - t / sqrt(2 + t^2)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def test_mean_and_interval_of_three_values():
    m = stats.mean_ci([0.97, 0.98, 0.99])
    assert (m.n, m.mean, m.std) == (3, pytest.approx(0.98), pytest.approx(0.01))
    assert m.low == pytest.approx(0.98 - T_975_DF2 * 0.01 / math.sqrt(3))
    assert m.high == pytest.approx(0.98 + T_975_DF2 * 0.01 / math.sqrt(3))
    assert math.isnan(stats.mean_ci([0.5]).low) and stats.mean_ci([0.5, math.nan]).n == 1


def test_paired_test_matches_the_closed_form_for_three_seeds():
    a, b = [0.990, 0.985, 0.992], [0.970, 0.972, 0.969]
    d = [x - y for x, y in zip(a, b)]
    mean, sd = sum(d) / 3, math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    t = mean / (sd / math.sqrt(3))
    got = stats.paired(a, b)
    assert got.diff == pytest.approx(mean)
    assert got.p == pytest.approx(two_sided_p_df2(t))
    assert (got.low, got.high) == (pytest.approx(mean - T_975_DF2 * sd / math.sqrt(3)),
                                   pytest.approx(mean + T_975_DF2 * sd / math.sqrt(3)))
    assert got.p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)


def test_welch_with_a_constant_sample_has_two_degrees_of_freedom():
    a, b = [0.91, 0.95, 0.96], [0.90, 0.90, 0.90]
    se = math.sqrt(scipy_stats.tvar(a) / 3)
    got = stats.welch(a, b)
    t = (sum(a) / 3 - 0.90) / se
    assert got.p == pytest.approx(two_sided_p_df2(t))
    assert got.high - got.diff == pytest.approx(T_975_DF2 * se)


def test_welch_agrees_with_scipy_on_unequal_sizes_and_variances():
    a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
    b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9]
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    got = stats.welch(a, b)
    assert got.p == pytest.approx(reference.pvalue)
    ci = reference.confidence_interval(0.95)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_compare_pairs_by_seed_only_when_both_cells_share_the_seeds():
    assert stats.compare({0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.6, 1: 0.5, 2: 0.45}).test == "paired"
    assert stats.compare({0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.6, 1: 0.5, 3: 0.45}).test == "welch"


def table(rows):
    frame = pd.DataFrame(rows, columns=["model", "optim", "optim.lr", "seed", "test_acc", "best_val_acc",
                                        "train_seconds", "status", "run_id"])
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    return frame


RUNS = table([
    ("classic", "adam", "0.001", seed, acc, acc, 1.0, "FINISHED", None)
    for seed, acc in enumerate([0.990, 0.988, 0.991])
] + [
    ("classic", "sgd", "0.9", seed, acc, acc, 1.0, "FINISHED", None) for seed, acc in enumerate([0.95, 0.96, 0.94])
] + [
    ("d2l", "adam", "0.001", seed, acc, acc, 1.0, "FINISHED", None) for seed, acc in enumerate([0.97, 0.975, 0.972])
] + [
    ("d2l", "sgd", "0.9", seed, acc, acc, 1.0, status, None)
    for seed, acc, status in [(0, 0.96, "FINISHED"), (1, 0.97, "FINISHED"), (2, math.nan, "DIVERGED")]
])


def test_cells_group_runs_by_every_factor_but_the_seed():
    cells = compare.cells(RUNS, ["model", "optim"])
    assert list(cells["cell"]) == ["classic, adam", "classic, sgd", "d2l, adam", "d2l, sgd"]
    assert list(cells["n"]) == [3, 3, 3, 2] and list(cells["not_finished"]) == [0, 0, 0, 1]
    assert cells["test_acc_mean"][0] == pytest.approx(0.989667, abs=1e-6)
    # a factor that is not the seed keeps runs apart even when everything else agrees
    split = compare.cells(RUNS.assign(**{"optim.lr": ["0.001", "0.002", "0.001"] + ["0.9"] * 9}),
                          ["model", "optim", "optim.lr"])
    assert len(split) == 5


def test_comparisons_pair_cells_that_differ_in_one_factor_and_say_it_plainly():
    found = compare.comparisons(RUNS, ["model", "optim"])
    assert len(found) == 4  # classic/adam vs d2l/sgd differs in two factors: not compared
    row = found[(found["factor"] == "optim") & (found["context"] == "classic")].iloc[0]
    assert (row["better"], row["worse"], row["test"]) == ("adam", "sgd", "paired")
    assert row["sentence"].startswith("on classic, adam beats sgd by +4.0 points (95% CI 1.1 to 6.8, p=0.027, ")
    assert row["sentence"].endswith("n=3 each)")
    d2l = found[(found["factor"] == "optim") & (found["context"] == "d2l")].iloc[0]
    assert d2l["test"] == "welch" and "n=3 and 2" in d2l["sentence"]  # the diverged run is left out
    assert "not distinguishable" in d2l["sentence"]


def test_main_effects_average_over_the_other_factors():
    effects = compare.main_effects(RUNS, ["model", "optim"]).set_index(["factor", "level"])
    classic = RUNS[(RUNS.model == "classic")]["test_acc"].mean()
    d2l = RUNS[(RUNS.model == "d2l")]["test_acc"].dropna().mean()
    assert effects.loc[("model", "classic"), "effect"] == pytest.approx(classic - d2l)
    assert effects.loc[("model", "d2l"), "n"] == 5


def test_a_single_factor_names_cells_by_its_plain_values():
    cells = compare.cells(RUNS[RUNS.optim == "adam"], ["model"])
    assert list(cells["cell"]) == ["classic", "d2l"] and list(cells["model"]) == ["classic", "d2l"]


def test_summary_of_a_single_seed_factorial_shows_main_effects_and_asks_for_seeds():
    from experiments.export import summary_text

    one_seed = RUNS[RUNS.seed == 0]
    result = {"runs": one_seed, "pivot": pd.DataFrame(), "cells": compare.cells(one_seed, ["model", "optim"]),
              "comparisons": compare.comparisons(one_seed, ["model", "optim"]),
              "effects": compare.main_effects(one_seed, ["model", "optim"])}
    text = summary_text(result, "t")
    assert "sweep seeds too (seed=0,1,2)" in text and "not distinguishable" not in text
    assert "Main effects on test_acc" in text  # each level still averages 2 runs
