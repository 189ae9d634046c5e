"""The verdict in sentences: each claim at its level (recipes, or two trained networks), its interval labelled
with the level it was computed at, a recipe's failures in the same sentence as its accuracy, counts beside
the names they belong to; the answer first, the significant findings and the largest gaps next."""
from __future__ import annotations

import math

import pandas as pd

from . import stats
from .family import Verdict
from .family import findings as findings_of
from ..config import label
from .outcomes import FAILURES, best_cell

CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "BH"}


def points(x: float) -> str:
    return f"{x * 100:+.1f} points"


def interval(low: float, high: float, level: float, correction: str) -> str:
    """An interval with the level it was computed at: 95%, or the family's adjusted level."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if abs(level - stats.LEVEL) < 1e-9:
        name = "95% CI"
    elif correction == "holm":
        name = f"{level:.2%} CI, Holm's level for this test".replace(".00%", "%")
    else:
        name = f"{level:.2%} CI, false-coverage adjusted".replace(".00%", "%")
    return f"{name}: {low * 100:.1f} to {high * 100:.1f}"


def on(row: dict) -> str:
    return f"on {row['context']}, " if row["context"] != "all runs" else ""


def failures(row: dict, a: str, b: str) -> str:
    """Each level's failed runs, beside its name (nothing if neither failed)."""
    parts = [f"{name} failed {int(row[f'fail_{s}'])} of {int(row[f'counted_{s}'])} runs ({row[f'failures_{s}']})"
             for name, s in ((a, "a"), (b, "b")) if row[f"fail_{s}"]]
    return ("; " + " and ".join(parts) + ": accuracy is among the runs that trained") if parts else ""


def accuracy_sentence(row: dict, v: Verdict) -> str:
    a, b = label(row["factor"], row["better"]), label(row["factor"], row["worse"])
    fails = failures(row, a, b)
    if row["test"] == "none":
        gap = points(row["diff"]) if math.isfinite(row["diff"]) else "no accuracy"
        return f"{on(row)}{a} vs {b}: {gap}, not a claim about the recipes ({row['why_not']}){fails}"
    numbers = (f"{interval(row['ci_low'], row['ci_high'], row['level'], v.correction)}; {stats.fmt_p(row['p_adj'])} "
               f"{CORRECTION_NAMES[v.correction]}; {sizes(row)}")
    if row["significant"]:
        return f"{on(row)}{a} beats {b} by {points(row['diff'])} among runs that trained ({numbers}){fails}"
    return (f"{on(row)}{a} vs {b}: inconclusive ({points(row['diff'])} among runs that trained; {numbers})"
            f"{fails}{power(row, v)}")


def sizes(row: dict) -> str:
    return f"n={int(row['n_a'])} each" if row["n_a"] == row["n_b"] else f"n={int(row['n_a'])} and {int(row['n_b'])}"


def power(row: dict, v: Verdict) -> str:
    """How many seeds per cell would find the observed gap: 80% power at the family's first-step level."""
    gap, m = abs(row["diff"]), max(v.tests, 1)
    if gap < 0.0005:
        return "; the two agree to 0.05 points"
    alpha = stats.ALPHA / m if v.correction == "holm" else stats.ALPHA
    # The spread is itself estimated from the runs: at 3 per cell, the seeds needed range over 7x (10-90%).
    fewest, most = stats.seeds_range(gap, row["sd"], row["df"], alpha=alpha)
    if fewest is None:
        return ""
    fewest = max(fewest, stats.MIN_FOR_INTERVAL)
    many = f"at least {fewest}" if most is None else str(fewest) if most <= fewest else f"{fewest} to {most}"
    return (f"; {many} seeds per cell would detect a gap of {gap * 100:.1f} points with 80% power at alpha "
            f"{alpha:.2g} (0.05 over {m} tests), as the true seed-to-seed sd is anywhere in the 80% range that "
            f"{row['sd'] * 100:.1f} points over {row['df']:.3g} degrees of freedom allows")


def failure_sentence(row: dict, v: Verdict) -> str:
    a, b = label(row["factor"], row["better"]), label(row["factor"], row["worse"])
    counts = (f"{b} {int(row['fail_b'])} of {int(row['counted_b'])} runs ({row['failures_b']}), "
              f"{a} {int(row['fail_a'])} of {int(row['counted_a'])}")
    if not math.isfinite(row["p"]):
        return f"{on(row)}failures: {counts}; {row['why_not']}"
    p = f"Fisher {stats.fmt_p(row['p_adj'])} {CORRECTION_NAMES[v.correction]}"
    if row["significant"]:
        return f"{on(row)}{b} fails more often than {a}: {counts} ({p})"
    return f"{on(row)}failures: {counts}; inconclusive ({p})"


def network_sentence(row: dict, v: Verdict) -> str:
    a, b = label(row["factor"], row["better"]), label(row["factor"], row["worse"])
    which = (f"the trained networks {a} (seed {row['seed_a']}) and {b} (seed {row['seed_b']})")
    numbers = (f"{a}'s alone got {int(row['only_a'])} right, {b}'s alone {int(row['only_b'])}; McNemar "
               f"{stats.fmt_p(row['p_adj'])} {CORRECTION_NAMES[v.correction]}; "
               f"{interval(row['ci_low'], row['ci_high'], stats.LEVEL, v.correction)} for these two networks")
    verb = "differ" if row["significant"] else "do not differ measurably"
    return f"{on(row)}{which} {verb} on the same {int(row['test_images']):,} test images ({numbers})"


def network_lines(v: Verdict) -> list[str]:
    """The trained networks compared where their recipes have too few runs: a section of its own, apart from the
    findings about recipes, with what it can and cannot say stated once."""
    if not len(v.networks):
        return []
    said = [network_sentence(r, v) for r in v.networks.sort_values("p").to_dict("records")]
    return ["Trained networks, not recipes: where a recipe has fewer than 3 runs, two networks are compared on the "
            "same test images (McNemar's exact test, adjusted among these only). A difference here is between "
            "these two networks; another seed could reverse it, so it is no finding about the recipes: sweep "
            "seeds (seed=0,1,2) to compare those.", ""] + [f"- {s}" for s in said] + [""]


def model_sentences(v: Verdict) -> list[str]:
    """Each significant term of the model in words: interactions as how one factor's effect changes across
    another's levels; a main effect as its levels' means, unless an interaction says more."""
    model, out = v.model, []
    if not len(model.anova):
        return out
    rows = model.anova[model.anova["significant"]].to_dict("records")
    interacting = {f for r in rows if " x " in r["term"] for f in r["term"].split(" x ")}
    p = lambda r: f"{stats.fmt_p(r['p_adj'])} {CORRECTION_NAMES[v.correction]}"  # noqa: E731
    for r in rows:
        term = r["term"].split(" x ")
        if len(term) == 1:
            means = {lv: model.mean_of({term[0]: lv}) for lv in model.levels[term[0]]}
            if any(not math.isfinite(x) for x in means.values()):
                out.append(f"{term[0]} matters ({p(r)}), but its means are not estimable: some cells have no run "
                           f"that trained")
                continue
            best, worst = max(means, key=means.get), min(means, key=means.get)
            others = [f for f in model.levels if f != term[0]]
            over = f", averaged over {', '.join(others)}" if others else ""
            depends = (f"; its effect depends on {', '.join(sorted(interacting - {term[0]}))} (below), so the average "
                       f"alone can mislead") if term[0] in interacting else ""
            out.append(f"{term[0]} matters: {label(term[0], best)} {means[best]:.4f} vs {label(term[0], worst)} "
                       f"{means[worst]:.4f}{over} ({points(means[best] - means[worst])}; {p(r)}){depends}"
                       f"{failures_of(v.cells, term[0], [best, worst])}")
        elif len(term) == 2:
            out.append(interaction_sentence(model, term, p(r), v.cells))
        else:
            out.append(f"the {r['term']} interaction is significant ({p(r)}): two-factor effects differ across the "
                       f"third; compare the cells directly")
    return out


def failures_of(cells: pd.DataFrame, factor: str, levels: list) -> str:
    """The failed runs of each level, for a sentence that ranks the levels on the runs that trained; '' if none
    failed (the model is fitted to those runs only: a level that wins there may fail more often)."""
    if factor not in cells or not cells["failed_runs"].sum():
        return ""
    parts = []
    for i, level in enumerate(levels):
        group = cells[cells[factor].astype(str) == str(level)]
        kinds = ", ".join(f"{int(group[k].sum())} {k}" for k in FAILURES if k in group and group[k].sum())
        parts.append(f"{label(factor, level)}{' failed' if not i else ''} {int(group['failed_runs'].sum())} of "
                     f"{int(group['counted'].sum())}{' runs' if not i else ''}{f' ({kinds})' if kinds else ''}")
    return f"; the means are of the runs that trained: {', '.join(parts)}"


def interaction_sentence(model, term: list[str], p: str, cells: pd.DataFrame | None = None) -> str:
    by, varied = term if len(model.levels[term[1]]) <= len(model.levels[term[0]]) else term[::-1]
    parts = []
    for level in model.levels[by]:
        means = {x: model.mean_of({by: level, varied: x}) for x in model.levels[varied]}
        if len(means) == 2:
            (a, ma), (b, mb) = sorted(means.items(), key=lambda kv: str(kv[0]))
            parts.append(f"{a} - {b} is {points(ma - mb)} on {level}")
        else:
            best, worst = max(means, key=means.get), min(means, key=means.get)
            parts.append(f"on {level} {best} is best ({means[best]:.4f}) and {worst} worst ({means[worst]:.4f})")
    failures = failures_of(cells, varied, list(model.levels[varied])) if cells is not None else ""
    return f"the effect of {varied} depends on {by}: {'; '.join(parts)} (interaction {p}){failures}"


def findings(v: Verdict, limit: int = 8) -> tuple[list[str], int]:
    """The comparisons of recipes a person reads: significant claims first, then the largest gaps; and how many
    more there are (in comparisons.csv). The trained networks' comparisons are network_lines'."""
    rows = v.recipes.to_dict("records") if len(v.recipes) else []
    write = {"accuracy": accuracy_sentence, "failures": failure_sentence}

    def rank(row):
        gap = abs(row["diff"]) if math.isfinite(row.get("diff", math.nan)) else -1
        return (not row.get("significant", False), -gap)

    ordered = sorted(rows, key=rank)
    return [write[r["kind"]](r, v) for r in ordered[:limit]], max(0, len(ordered) - limit)


def family_sentence(v: Verdict) -> str:
    if not v.tests:
        return "No test of a difference between recipes could be made here."
    c = v.counts
    what = f"{c['accuracy']} comparisons of accuracy, {c['failures']} of failure rates, {c['terms']} model terms"
    found = len(findings_of(v))
    said = f"{found} finding{'s' if found != 1 else ''} from {v.claims()} of {v.tests} tests significant"
    once = " (tests that state the same fact count once)" if v.claims() > found else ""
    if v.correction == "holm":
        return (f"Claims: {said} at 0.05 after Holm's correction over every test in this summary ({what}){once}: if "
                f"no recipe differed, the chance of any claim here would be at most 5%.")
    return (f"Claims: {said} at a 5% false discovery rate (Benjamini-Hochberg) over every test in this summary "
            f"({what}){once}: at most 5% of the significant tests are expected to be false.")


def accuracy_text(cell: dict) -> str:
    """A cell's accuracy among its runs that trained: an interval over seeds only from 3 runs or more; one run's
    Wilson interval says so (the test set's noise, not the seeds')."""
    if cell["n"] == 0:
        return "-"
    if cell["test_acc_interval"] == "t":
        clipped = " (clipped to [0, 1])" if cell["test_acc_clipped"] else ""
        return (f"{cell['test_acc_mean']:.4f} (95% CI over seeds {cell['test_acc_ci_low']:.4f} to "
                f"{cell['test_acc_ci_high']:.4f}{clipped})")
    if cell["n"] == 1 and cell["test_acc_interval"]:
        return (f"{cell['test_acc_mean']:.4f} (one run; 95% {cell['test_acc_interval']}: {cell['test_acc_ci_low']:.4f}"
                f" to {cell['test_acc_ci_high']:.4f})")
    return f"{cell['test_acc_values']} (too few runs for an interval)"


def headline(v: Verdict) -> str:
    """The answer in one paragraph: the best recipe by score, its spread, the gap to the next, what failed."""
    cells = v.cells
    best = best_cell(cells)
    if best is None:
        return ("No recipe has a run that trained: every run failed, was interrupted or is still running"
                + (f" (failed: {int(cells['failed_runs'].sum())} of {int(cells['counted'].sum())} counted runs)."
                   if len(cells) else "."))
    spread = (f"{int(best['n'])} of {int(best['counted'])} runs trained, {best['test_acc_min']:.4f} to "
              f"{best['test_acc_max']:.4f}" if best["n"] > 1 else f"{int(best['n'])} of {int(best['counted'])} "
              f"runs trained")
    if len(cells) == 1:  # one recipe: its result, not a ranking of one
        failed = f"; {int(best['failed_runs'])} of {int(best['counted'])} runs failed ({best['failures']})" \
            if best["failed_runs"] else ""
        return f"{best['cell']}: test accuracy {accuracy_text(best)}{failed}."
    text = (f"Best recipe: {best['cell']}, score {best['score_mean']:.4f} (mean test accuracy with failed runs "
            f"counted at chance; {spread})")
    ranked = cells[cells["cell"] != best["cell"]].sort_values("score_mean", ascending=False)
    if len(ranked) and math.isfinite(ranked.iloc[0]["score_mean"]):
        nxt = ranked.iloc[0]
        text += f"; next: {nxt['cell']}, {nxt['score_mean']:.4f} ({points(best['score_mean'] - nxt['score_mean'])})"
    failed = cells[cells["failed_runs"] > 0]
    if len(failed):
        text += "; failed runs: " + "; ".join(f"{r['cell']} {int(r['failed_runs'])} of {int(r['counted'])} "
                                              f"({r['failures']})" for r in failed.to_dict("records"))
    found = len(findings_of(v))
    if v.tests:
        text += f". {found} finding{'s' if found != 1 else ''} about the recipes (see below)."
    elif cells["counted"].max() <= 1:
        text += ". One run per recipe: no claim about the recipes can be made; sweep seeds (seed=0,1,2) for one."
    else:
        text += f". Too few runs that trained for a test: a claim about recipes needs {stats.MIN_FOR_INTERVAL} each."
    return text


def table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if len(frame) else ""
