"""The summary a person reads, as Markdown: the answer first, then the recipes (cells) with their failures and
seed spread, the significant findings and the largest gaps (the rest in comparisons.csv), the statement of
what the family of tests risks, the factorial model, and what a reader must know about the runs (files gone,
code that changed, runs still running)."""
from __future__ import annotations

import pandas as pd

from . import brief, wording
from .outcomes import MEANING
from .results import markdown_table
SENTENCES = 8  # comparison sentences in the summary; every comparison is in comparisons.csv


# The runs table's columns a reader scans in the summary (every column is in runs.csv).
SHOWN = ["run_name", "model", "model.activation", "model.pool", "optim", "optim.lr", "data", "seed", "trainer.epochs",
         "test_acc", "best_val_acc", "train_seconds", "samples_per_second", "status", "outcome"]


def markdown(table: pd.DataFrame) -> str:
    return markdown_table(table.round({"train_seconds": 2, "samples_per_second": 0}))


def shown_runs(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in SHOWN if c in table.columns]]


def cells_shown(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cell in cells.to_dict("records"):
        fails = int(cell["failed_runs"])
        rate = f"{fails} of {int(cell['counted'])}" + (
            f" ({cell['failures']}; 95% CI {cell['failure_ci_low']:.2f} to {cell['failure_ci_high']:.2f})"
            if fails else "")
        if cell["not_counted"] != "none":
            rate += f"; not counted: {cell['not_counted']}"
        spread = f"{cell['test_acc_min']:.4f} to {cell['test_acc_max']:.4f}" if cell["n"] > 1 else "-"
        rows.append({"cell": cell["cell"], "runs": int(cell["runs"]), "trained": int(cell["n"]), "failed": rate,
                     "test_acc (runs that trained)": wording.accuracy_text(cell), "seed range": spread,
                     "score": f"{cell['score_mean']:.4f}" if pd.notna(cell["score_mean"]) else "-"})
    return pd.DataFrame(rows)


def summary_text(result: dict, title: str, with_runs: bool = True, sentences: int = SENTENCES) -> str:
    everything, cells, verdict = result["runs"], result["cells"], result["verdict"]
    table = result["answered"]
    if everything.empty:  # stopped (or refused by a launcher) before any job made a run
        return f"# {title}\n\nNo runs: the sweep ended before any of its jobs started one.\n"
    lines = [f"# {title}", "", wording.headline(verdict), ""]
    if len(cells):
        lines += ["Recipes (every swept value but the seed; score: mean test accuracy with failed runs at chance):",
                  "", cells_shown(cells).to_markdown(index=False), ""]
    failed = brief.failed_lines(cells, table, everything) if len(cells) else []
    if failed:  # each failed recipe, why, and one thing to try that the sweep has not (analysis.brief)
        lines += failed + [MEANING[k] for k in MEANING if (table["outcome"] == k).any()] + [""]
    superseded = brief.superseded_note(everything)
    lines += notes(table) + (superseded + [""] if superseded else [])
    said, more = wording.findings(verdict, sentences)
    if said:
        lines += [wording.family_sentence(verdict), ""] + [f"- {s}" for s in said]
        lines += ([f"- ... and {more} more comparisons in comparisons.csv"] if more else []) + [""]
    lines += wording.network_lines(verdict) + model_lines(verdict)
    if with_runs:
        lines += ["Runs:", "", markdown(shown_runs(table)), ""]
        if not result["pivot"].empty and {"model", "optim"} <= set(table.columns):
            lines += ["test_acc by model x optim (runs that trained):", "",
                      markdown_table(result["pivot"], floatfmt=".4f"), ""]  # no run that trained: -, not nan
    return "\n".join(lines)


def notes(table: pd.DataFrame) -> list[str]:
    """What a reader must know about the runs themselves before trusting the numbers."""
    out = []
    if "missing_files" in table and table["missing_files"].notna().any():
        lacking = table[table["missing_files"].notna()]
        out += ["Runs that lack files (deleted?): " + "; ".join(
            f"run {r['run_id']} ({r['missing_files']})" for r in lacking.to_dict("records"))
            + ". A rerun of the sweep trains them again.", ""]
    codes = table["code"].dropna().value_counts() if "code" in table else pd.Series(dtype=int)
    if len(codes) > 1:
        out += [f"These runs come from {len(codes)} versions of the library code (lenet.code): "
                + ", ".join(f"{code} ({n} runs)" for code, n in codes.items())
                + "; a difference between recipes may be the code's.", ""]
    running = int((table["outcome"] == "running").sum())
    if running:
        out += [f"{running} run{'s are' if running > 1 else ' is'} still running: shown as running, in no rate or "
                f"test.", ""]
    return out


def why_not_estimable(verdict, factor: str, level) -> str:
    """Which recipes a level's mean would need: those never run (a grid the sweep did not fill), and those whose
    runs all failed."""
    import itertools

    from ..config import recipe

    factors = list(verdict.model.levels)
    cells = verdict.cells
    present = {tuple(row[f] for f in factors): row["n"] for row in cells.to_dict("records")} if len(cells) else {}
    grid = [dict(zip(factors, combo)) for combo in itertools.product(*verdict.model.levels.values())]
    needed = [g for g in grid if g.get(factor) == level]
    never = [recipe(factors, list(g.values())) for g in needed if tuple(g.values()) not in present]
    failed = [recipe(factors, list(g.values())) for g in needed if present.get(tuple(g.values())) == 0]
    parts = ([f"not run: {', '.join(never)}"] if never else []) + \
        ([f"no run that trained: {', '.join(failed)}"] if failed else [])
    return "; ".join(parts) or "a recipe it needs has no run that trained"


def model_lines(verdict) -> list[str]:
    model = verdict.model
    if not model.note:
        return []
    lines = [f"Factorial model: {model.note}.", ""]
    if len(model.anova):
        anova = model.anova[["term", "df", "df_denom", "F", "p", "p_adj"]]
        lines += [anova.to_markdown(index=False, floatfmt=".4g"), ""]
    if len(model.means):
        means = model.means.copy()
        means["emm"] = [f"{m:.4f}" if ok else f"not estimable ({why_not_estimable(verdict, f, lv)})"
                        for m, ok, f, lv in zip(means["emm"], means["estimable"], means["factor"], means["level"])]
        shown = means.drop(columns=[c for c in ("ci_low", "ci_high") if means[c].isna().all()] + ["estimable"])
        why = ("; their intervals are the model's, from every cell's own spread with HC3's small-sample inflation, "
               "so a level that is one recipe gets a different interval here than its t interval over its seeds "
               "above" if "ci_low" in shown else "")
        lines += [f"Marginal means of test_acc (each level averaged over the other factors' levels{why}):", "",
                  shown.rename(columns={"ci_low": "model ci_low", "ci_high": "model ci_high"})
                  .to_markdown(index=False, floatfmt=".4f"), ""]
    said = wording.model_sentences(verdict)
    return lines + [f"- {s}" for s in said] + ([""] if said else [])
