"""Learning curves and confusion matrices as PNG files.

Figures are matplotlib `Figure`s made directly, not through pyplot: no display is needed, no backend is chosen
for the process (a notebook that runs sweeps keeps its inline plots), and nothing is left open in pyplot's list
of figures to be closed.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def figure(*size: float, rows: int = 1, columns: int = 1):
    """A figure of this size in inches and its axes."""
    fig = Figure(figsize=size)
    return fig, fig.subplots(rows, columns)


def learning_curves(history: pd.DataFrame, path: Path, title: str = "") -> None:
    """Loss and accuracy against epoch, train vs validation, side by side."""
    fig, (ax_loss, ax_acc) = figure(9, 3.5, columns=2)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split in ("train", "val"):
            column = f"{split}_{metric}"
            if history[column].notna().any():
                ax.plot(history["epoch"], history[column], marker="o", label=split)
        ax.set(xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:  # a run that diverged in its first epoch has no finite loss to draw
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.86, wspace=0.25)  # fixed: tight_layout costs 50 ms
    fig.savefig(path, dpi=100, format="png")


def confusion_matrix(matrix: pd.DataFrame, path: Path, title: str = "") -> None:
    confusion_figure(matrix, title).savefig(path, dpi=100, format="png")


def confusion_figure(matrix: pd.DataFrame, title: str = "") -> Figure:
    """Counts with true classes as rows, predicted classes as columns (each written in its square,
    so no colour bar: it took 40% of the plot's time)."""
    size = 2 + 0.5 * len(matrix)
    fig, ax = figure(size + 1, size)
    ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.to_numpy().max() / 2
    for (i, j), count in pd.DataFrame(matrix.to_numpy()).stack().items():
        ax.text(j, i, int(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    # Fixed margins, in inches, wide enough for a class name of 12 characters turned 45 degrees (Fashion-MNIST's
    # "T-shirt/top"): tight_layout measured every label first, and took half the figure's time.
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=1.3 / width, right=1 - 0.2 / width, bottom=1.3 / height, top=1 - 0.5 / height)
    return fig


def cell_curves(bands: dict[str, pd.DataFrame], metric: str, path: Path) -> None:
    """One line per cell (mean across its runs), with its 95% interval as a band where 3 or more runs
    give one (accuracy bands are clipped to [0, 1], as the summary's intervals are)."""
    fig, ax = figure(7, 4.5)
    for cell, band in bands.items():
        runs = int(band["runs"].max())
        (line,) = ax.plot(band["epoch"], band["mean"], marker="o", markersize=3, label=f"{cell} (n={runs})")
        shown = band["low"].notna()
        if shown.any():
            ax.fill_between(band["epoch"][shown], band["low"][shown], band["high"][shown], color=line.get_color(),
                            alpha=0.2)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric}: mean across seeds, 95% interval where n >= 3")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")


def cell_accuracy(cells: pd.DataFrame, path: Path, metric: str = "test_acc") -> None:
    """Accuracy per recipe among its runs that trained: the mean with its 95% interval over seeds (3+ runs),
    one run's test-set (Wilson) interval drawn apart (dashed, grey: the test set's noise, not the seeds'), else
    each run's value; recipes with failed runs are marked in red with the count."""
    fig, ax = figure(7, 1.5 + 0.4 * len(cells))
    for y, cell in enumerate(cells.to_dict("records")):
        mean = cell[f"{metric}_mean"]
        if cell["n"] >= 3 and pd.notna(cell[f"{metric}_ci_low"]):
            err = [[mean - cell[f"{metric}_ci_low"]], [cell[f"{metric}_ci_high"] - mean]]
            ax.errorbar([mean], [y], xerr=err, fmt="o", capsize=4, color="C0")
        elif cell["n"] == 1 and pd.notna(cell[f"{metric}_ci_low"]):
            err = [[mean - cell[f"{metric}_ci_low"]], [cell[f"{metric}_ci_high"] - mean]]
            bars = ax.errorbar([mean], [y], xerr=err, fmt="s", mfc="none", capsize=3, color="0.45")
            bars[-1][0].set_linestyle("--")
        elif cell["n"]:
            values = [float(v) for v in str(cell[f"{metric}_values"]).split(", ") if v]
            ax.plot(values, [y] * len(values), "o", mfc="none", color="C0")
        if cell["failed_runs"]:
            ax.annotate(f"{int(cell['failed_runs'])}/{int(cell['counted'])} failed", (0, y),
                        xycoords=("axes fraction", "data"), xytext=(4, 6), textcoords="offset points", color="C3",
                        fontsize=7)
    labels = [f"{c} (n={n})" for c, n in zip(cells["cell"], cells["n"])]
    ax.set_yticks(range(len(cells)), labels)
    for tick, fails in zip(ax.get_yticklabels(), cells["failed_runs"]):
        tick.set_color("C3" if fails else "black")
    ax.set(xlabel=f"{metric} of runs that trained: mean with 95% interval over seeds (n >= 3); one run: its "
                  f"test-set interval (grey, dashed); else each run (open circles)")
    ax.xaxis.label.set_fontsize(8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
