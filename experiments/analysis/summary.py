"""The summary a person reads: the runs, the pivot, the cells with their failures, the comparisons in
sentences and the factorial model, as Markdown."""
from __future__ import annotations

import pandas as pd

from . import compare
from .tables import SHOWN

def markdown(table: pd.DataFrame) -> str:
    shown = table.round({"train_seconds": 2, "samples_per_second": 0})
    return shown.to_markdown(index=False, floatfmt="g")


def shown_runs(table: pd.DataFrame) -> pd.DataFrame:
    return table[[c for c in SHOWN if c in table.columns]]


def accuracy_text(cell: dict) -> str:
    """A cell's test accuracy as the summary shows it: an interval only from 3 runs or more."""
    if cell["n"] == 0:
        return "-"
    if cell["test_acc_interval"] == "t":
        clipped = " (clipped to [0, 1])" if cell["test_acc_clipped"] else ""
        return (f"{cell['test_acc_mean']:.4f} (95% CI {cell['test_acc_ci_low']:.4f} to {cell['test_acc_ci_high']:.4f}"
                f"{clipped})")
    if cell["n"] == 1 and cell["test_acc_interval"]:
        return (f"{cell['test_acc_mean']:.4f} ({cell['test_acc_interval']}: {cell['test_acc_ci_low']:.4f} to "
                f"{cell['test_acc_ci_high']:.4f})")
    return f"{cell['test_acc_values']} (too few runs for an interval)"


def cells_shown(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cell in cells.to_dict("records"):
        fails = cell["runs"] - cell["ok"]
        rate = f"{fails} of {cell['runs']}" + (f" ({cell['failures']}; 95% CI {cell['failure_ci_low']:.2f} to "
                                               f"{cell['failure_ci_high']:.2f})" if fails else "")
        rows.append({"cell": cell["cell"], "runs": cell["runs"], "finished": cell["n"], "failed": rate,
                     "test_acc": accuracy_text(cell)})
    return pd.DataFrame(rows)


def summary_text(result: dict, title: str, with_runs: bool = True) -> str:
    table, cells, found = result["runs"], result["cells"], result["comparisons"]
    if table.empty:  # stopped (or refused by a launcher) before any job made a run
        return f"# {title}\n\nNo runs: the sweep ended before any of its jobs started one.\n"
    lines = [f"# {title}", ""] + ([markdown(shown_runs(table)), ""] if with_runs else [])
    if not result["pivot"].empty and {"model", "optim"} <= set(table.columns):
        lines += ["test_acc by model x optim:", "", result["pivot"].to_markdown(index=False, floatfmt=".4f"), ""]
    if len(cells):
        lines += ["Cells (every swept value but the seed):", "", cells_shown(cells).to_markdown(index=False), ""]
    for outcome, hint in (("collapsed", compare.COLLAPSE_HINT), ("diverged", compare.DIVERGE_HINT)):
        if (table["outcome"] == outcome).any():
            lines += [hint, ""]
    if len(found):
        m = int(found["p"].notna().sum())
        lines += [f"Comparisons of cells that differ in one factor: {int(found['significant'].sum())} of {m} "
                  f"significant at 0.05 after Holm's correction (p-values adjusted over the {m}; each interval at "
                  f"its comparison's Holm level):", ""]
        lines += [f"- {s}" for s in found["sentence"]] + [""]
    model = result["model"]
    if model.note and result["factors"]:
        lines += [f"Factorial model: {model.note}.", ""]
        if len(model.anova):
            lines += [model.anova.to_markdown(index=False, floatfmt=".4g"), ""]
        if len(model.means):
            empty = [c for c in ("ci_low", "ci_high") if model.means[c].isna().all()]
            means = model.means.drop(columns=empty + ([] if model.means["clipped"].any() else ["clipped"]))
            lines += ["Estimated marginal means of test_acc (each level averaged over the other factors' levels):", "",
                      means.to_markdown(index=False, floatfmt=".4f"), ""]
        lines += [f"- {s}" for s in model.interactions] + ([""] if model.interactions else [])
    return "\n".join(lines)
