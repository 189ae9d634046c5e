"""The summary the terminal prints: the answer in one screen, every line under 100 characters.

The best recipe with its accuracy at the right level (one network's test-set interval, or the interval over
seeds), the gap to the next; each failed recipe with its reason and one hint the sweep has not tried; a compact
table of the recipes (the best first, the rest counted past a screen); the claims about recipes, at most a few,
each with the failures of its recipes; and the next step. Everything else (every comparison, the factorial model,
the runs) is in the full summary (summary.md, the parent run's description) and `experiments.export`.
"""
from __future__ import annotations

import math
import textwrap

import pandas as pd

from ..config import label
from . import family, stats
from .outcomes import FAILURES, best_cell

WIDTH = 100
SHOWN_RECIPES = 12  # rows of the recipe table before the rest are counted
SHOWN_CLAIMS = 6
PLATEAU = 2.2  # a training loss still above this at its last epoch never left chance's ln(10) = 2.30


def brief(result: dict, where: str = "") -> str:
    """What the sweep prints at its end; where: the full summary's place, said on the last line."""
    table, cells, verdict = result["answered"], result["cells"], result["verdict"]
    if result["runs"].empty:
        return "No runs: the sweep ended before any of its jobs started one."
    ranked = cells.sort_values(["score_mean", "failure_rate"], ascending=[False, True], na_position="last")
    lines = headline(ranked, table) + failed_lines(ranked, table, result["runs"]) + not_counted(ranked)
    lines += superseded_note(result["runs"]) + [""]
    lines += recipe_table(ranked) + [""]
    said = claims(verdict)
    if said:
        lines += said + [""]
    lines += next_step(cells, verdict, result["runs"])
    if where:
        lines.append(f"Every comparison, the factorial model and the runs: {where}")
    return "\n".join(wrapped(lines))


def wrapped(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if len(line) <= WIDTH:
            out.append(line)
        else:
            out += textwrap.wrap(line, WIDTH, subsequent_indent="  ", break_on_hyphens=False,
                                 break_long_words=False)  # a path longer than a line stays whole
    return out


def accuracy(cell: dict) -> str:
    """A recipe's accuracy at its level: over seeds (3+ runs that trained), one network's test-set interval, or
    the values of two runs."""
    if cell["n"] == 0:
        return "no run trained"
    mean = cell["test_acc_mean"]
    low, high = cell["test_acc_ci_low"], cell["test_acc_ci_high"]
    if cell["test_acc_interval"] == "t":
        return f"{mean:.4f} (95% CI over {int(cell['n'])} seeds: {low:.3f}-{high:.3f})"
    if cell["n"] == 1 and cell["test_acc_interval"]:
        size = cell["test_acc_interval"].split(", ")[1].split(" ")[0]
        return f"{mean:.4f} (one network; 95% over {size} test images: {low:.3f}-{high:.3f})"
    return f"{mean:.4f} (mean of {cell['test_acc_values']})"


def headline(ranked: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    best = best_cell(ranked)
    if best is None:
        counted = int(ranked["counted"].sum()) if len(ranked) else 0
        return [f"No recipe has a run that trained: {int(ranked['failed_runs'].sum()) if len(ranked) else 0} of "
                f"{counted} runs failed."]
    if len(ranked) == 1:
        return [f"{best['cell']}: test accuracy {accuracy(best)}."]
    lines = [f"Best: {best['cell']}, test accuracy {accuracy(best)}"]
    others = ranked[(ranked["cell"] != best["cell"]) & (ranked["n"] > 0)]
    if len(others):
        nxt = others.iloc[0]
        gap = (best["score_mean"] - nxt["score_mean"]) * 100
        lines.append(f"Next: {nxt['cell']}, {nxt['test_acc_mean']:.4f}: {gap:.1f} points behind on score "
                     f"(test accuracy with failed runs at chance)")
    return lines


SHOWN_FAILED = 3  # lines of failed recipes before the rest are counted


def failed_lines(ranked: pd.DataFrame, table: pd.DataFrame, everything: pd.DataFrame) -> list[str]:
    """The recipes with failed runs: how many, why, and one hint the sweep has not tried; recipes that failed the
    same way with the same hint share a line."""
    said: dict[tuple[str, str], list[str]] = {}
    for cell in ranked[ranked["failed_runs"] > 0].to_dict("records"):
        runs = table[(table["cell"] == cell["cell"]) & table["outcome"].isin(FAILURES)]
        reasons = why(cell["failures"], runs)
        if cell["counted"] == 1:  # "its run diverged at epoch 1"
            what = f"its run {reasons.split(' ', 1)[1]}"
        else:  # "2 of 3 runs failed (1 diverged at epoch 2, 1 collapsed)"
            what = f"{int(cell['failed_runs'])} of {int(cell['counted'])} runs failed ({reasons})"
        said.setdefault((what, hint(runs, everything)), []).append(cell["cell"])
    lines = []
    for (what, tip), names in list(said.items())[:SHOWN_FAILED]:
        if len(names) > 1:  # "their runs diverged at epoch 1", or "2 of 3 runs failed (...) in each"
            what = what.replace("its run ", "their runs ", 1) if what.startswith("its run ") else f"{what} in each"
        lines.append(f"Failed: {', '.join(names)}, {what}{tip}")
    if len(said) > SHOWN_FAILED:
        rest = sum(len(names) for names in list(said.values())[SHOWN_FAILED:])
        lines.append(f"Failed: {rest} more recipes (the full analysis names them)")
    return lines


def not_counted(ranked: pd.DataFrame) -> list[str]:
    """Runs that say nothing about their recipe (a handled Ctrl-C, still running): in no number, and said so."""
    shown = ranked[ranked["not_counted"] != "none"]
    if shown.empty:
        return []
    return ["Not counted: " + "; ".join(f"{c['cell']} {c['not_counted']}" for c in shown.to_dict("records"))
            + " (in no number here; rerun the same command to train them)"]


def superseded_note(table: pd.DataFrame) -> list[str]:
    """One line: how many runs a newer run of their config replaced, and why (they are in runs.csv only)."""
    old = table[table["superseded_why"].notna()] if "superseded_why" in table else table.iloc[:0]
    if old.empty:
        return []
    why = old["superseded_why"].value_counts()
    n = len(old)
    return [f"{n} older run{'s' if n > 1 else ''} superseded by a newer run of {'their' if n > 1 else 'its'} config "
            f"({', '.join(f'{k}: {v}' for k, v in why.items())}): in runs.csv, in no number."]


def why(failures: str, runs: pd.DataFrame) -> str:
    """The recipe's failures ("1 diverged, 1 collapsed") with when they diverged: "1 diverged at epoch 2, ..."."""
    epochs = sorted({int(e) for e in runs["diverged_epoch"].dropna()})
    at = f" at epoch {', '.join(map(str, epochs))}" if epochs else ""
    return ", ".join(part + at if part.endswith("diverged") else part + (" at chance" if part.endswith("collapsed")
                                                                         else "") for part in failures.split(", "))


PLATEAU_STEPS = 2000  # d2l's sigmoid LeNet at lr 0.9 leaves its loss plateau after about 1,650 steps


def hint(runs: pd.DataFrame, everything: pd.DataFrame) -> str:
    """The first thing to try that the sweep has not: more epochs for a loss that never left its plateau in few
    steps (too few epochs, not too high an lr), else a fifth of the learning rate or less, skipping every lr the
    sweep tried (a loss still at 2.30 after many steps is a network an lr too high has killed)."""
    run = runs.iloc[0]
    if run["outcome"] == "collapsed" and pd.notna(run["train_loss"]) and run["train_loss"] > PLATEAU \
            and steps(run) < PLATEAU_STEPS:
        epochs = int(run["trainer.epochs"])
        tried = set(everything["trainer.epochs"].dropna().astype(int))
        more = next((n for n in (epochs * 3, epochs * 10, epochs * 30) if n not in tried), None)
        return (f"; the loss never left 2.30 in {epochs} epoch{'s' if epochs > 1 else ''}: try trainer.epochs={more}"
                if more else "")
    if run["outcome"] in ("diverged", "collapsed") and pd.notna(run["optim.lr"]):
        tried = [float(t) for t in everything["optim.lr"].dropna().unique()]
        lr = nice_below(float(runs["optim.lr"].min()) / 5)
        while any(math.isclose(lr, t) for t in tried):
            lr = nice_below(lr * 0.99)
        return f"; often too high an lr: try optim.lr={lr:g}"
    return ""


def steps(run) -> float:
    """The optimizer steps a run took: epochs x batches per epoch (0 where the run does not say its data's size,
    as runs recorded before train_size do: then its epochs are taken to be few)."""
    size, batch = run.get("train_size"), run.get("trainer.batch_size")
    if pd.isna(size) or pd.isna(batch) or not batch:
        return 0
    return int(run["trainer.epochs"]) * math.ceil(int(size) / int(batch))


def nice_below(x: float) -> float:
    """The largest of 1, 3, 10, 30, ... times a power of ten at or below x: an lr a person would type."""
    power = 10.0 ** math.floor(math.log10(x))
    return 3 * power if 3 * power <= x * (1 + 1e-9) else power


def recipe_table(ranked: pd.DataFrame) -> list[str]:
    """The recipes, best first: runs, failures, accuracy among the runs that trained, score."""
    rows = []
    for cell in ranked.head(SHOWN_RECIPES).to_dict("records"):
        if cell["n"] == 0:
            acc = "-"
        elif cell["test_acc_interval"] == "t":
            acc = f"{cell['test_acc_mean']:.4f} ± {(cell['test_acc_ci_high'] - cell['test_acc_ci_low']) / 2:.4f}"
        else:
            acc = f"{cell['test_acc_mean']:.4f}"
        fails = f"{int(cell['failed_runs'])} {cell['failures'].split(' ', 1)[1]}" if cell["failed_runs"] else ""
        if cell["failed_runs"] and "," in cell["failures"]:
            fails = f"{int(cell['failed_runs'])} ({cell['failures']})"
        rows.append({"recipe": cell["cell"], "runs": str(int(cell["runs"])), "failed": fails or "-",
                     "test_acc": acc, "score": f"{cell['score_mean']:.3f}" if pd.notna(cell["score_mean"]) else "-"})
    over_seeds = (ranked["test_acc_interval"] == "t").any()
    header = {"recipe": "recipe", "runs": "runs", "failed": "failed",
              "test_acc": "test_acc ±95%" if over_seeds else "test_acc", "score": "score"}  # ± half the interval
    lines = columns([header] + rows, right={"runs", "test_acc", "score"})
    if len(ranked) > SHOWN_RECIPES:
        rest = ranked.iloc[SHOWN_RECIPES:]
        lines.append(f"... and {len(rest)} more recipes (scores {rest['score_mean'].min():.3f} to "
                     f"{rest['score_mean'].max():.3f}; {int(rest['failed_runs'].sum())} failed runs among them)")
    return lines


def columns(rows: list[dict], right: set[str]) -> list[str]:
    """A plain table for a terminal: columns two spaces apart, numbers right-aligned, no rules."""
    widths = {k: max(len(str(row[k])) for row in rows) for k in rows[0]}
    return ["  ".join(str(row[k]).rjust(w) if k in right else str(row[k]).ljust(w) for k, w in widths.items()).rstrip()
            for row in rows]


def claims(verdict) -> list[str]:
    """The findings about recipes, each once, stated by every significant test that says it (the comparison in
    each context, the model term that agrees); each with the failures of the recipes it names."""
    if not verdict.tests or not verdict.claims():
        return []
    found = family.findings(verdict)
    name = "Holm" if verdict.correction == "holm" else "Benjamini-Hochberg"
    tests = verdict.claims()
    counted = (f"{len(found)} finding{'s' if len(found) != 1 else ''}, from {tests} of {verdict.tests} tests "
               f"significant at 0.05 ({name}-corrected over all {verdict.tests}):")
    lines = [counted] + [f"- {finding_line(f, verdict.cells)}" for f in found[:SHOWN_CLAIMS]]
    if len(found) > SHOWN_CLAIMS:
        lines.append(f"- ... and {len(found) - SHOWN_CLAIMS} more in the full analysis")
    return lines


def finding_line(f, cells: pd.DataFrame) -> str:
    """One finding in a line: 'classic beats d2l among runs that trained: on adam by 3.1 points (p<0.001), on sgd
    by 2.9 (p<0.001, sgd failed 1 of 3); the model term agrees (p<0.001)'."""
    a, b = label(f.factor, f.better), label(f.factor, f.worse)
    term = (f"the model term agrees ({stats.fmt_p(f.term['p_adj'])}"
            f"{level_failures(cells, f.factor).replace(', ', '; ', 1)})") if f.term else ""
    if f.kind == "failures":
        parts = [f"{where(r)}{int(r['fail_b'])} of {int(r['counted_b'])} vs {int(r['fail_a'])} of "
                 f"{int(r['counted_a'])} ({stats.fmt_p(r['p_adj'])})" for r in f.rows]
        return f"{b} fails more often than {a}: {', '.join(parts)}"
    if f.kind == "accuracy":
        parts = []
        for i, r in enumerate(f.rows):
            fails = [f"{n} failed {int(r[f'fail_{s}'])} of {int(r[f'counted_{s}'])}" for n, s in ((a, "a"), (b, "b"))
                     if r[f"fail_{s}"]]
            parts.append(f"{where(r)}by {r['diff'] * 100:.1f}{' points' if not i else ''} "
                         f"({', '.join([stats.fmt_p(r['p_adj'])] + fails)})")
        return f"{a} beats {b} among runs that trained: {', '.join(parts)}" + (f"; {term}" if term else "")
    if f.kind == "term" and f.better is not None:
        return (f"{f.factor} matters on the runs that trained (factorial model, {stats.fmt_p(f.term['p_adj'])}): "
                f"{a} is best, {b} worst, averaged over the other factors{level_failures(cells, f.factor)}")
    if f.kind == "term":
        return (f"{f.factor} matters on the runs that trained (factorial model, {stats.fmt_p(f.term['p_adj'])}), "
                f"but its means are not estimable: some recipes have no run that trained")
    return (f"the effect of one of {' and '.join(f.factor.split(' x '))} depends on the other (interaction, "
            f"{stats.fmt_p(f.term['p_adj'])}): the full analysis says how")


def where(row: dict) -> str:
    return f"on {row['context']} " if row["context"] != "all runs" else ""


def level_failures(cells: pd.DataFrame, term: str) -> str:
    """For a main effect, the levels whose runs failed: ", sgd 3 of 6 runs failed"."""
    if " x " in term or term not in cells:
        return ""
    parts = [f"{label(term, level)} {int(g['failed_runs'].sum())} of {int(g['counted'].sum())} runs failed"
             for level, g in cells.groupby(term, sort=True) if g["failed_runs"].sum()]
    return (", " + ", ".join(parts)) if parts else ""


def next_step(cells: pd.DataFrame, verdict, everything: pd.DataFrame) -> list[str]:
    """What to run next for a stronger answer."""
    if not len(cells):
        return []
    most = int(cells["n"].max())
    seeds = sorted(everything["seed"].dropna().astype(int).unique())
    if most <= 1:
        return ["One seed per recipe: these are single networks. Add seed=0,1,2 to compare the recipes."]
    if most < stats.MIN_FOR_INTERVAL:
        more = ",".join(str(s) for s in range(max(seeds) + 1, max(seeds) + 1 + stats.MIN_FOR_INTERVAL - most))
        return [f"{most} runs per recipe are too few for an interval or a test: add seed={more}."]
    if verdict.tests and not verdict.claims():
        return ["No difference between recipes is significant at these seeds: the full analysis says how many "
                "more seeds each gap would need."]
    return []
