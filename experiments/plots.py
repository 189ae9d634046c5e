"""Learning curves and confusion matrices as PNG files (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def learning_curves(history: pd.DataFrame, path: Path, title: str = "") -> None:
    """Loss and accuracy against epoch, train vs validation, side by side."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        for split in ("train", "val"):
            column = f"{split}_{metric}"
            if history[column].notna().any():
                ax.plot(history["epoch"], history[column], marker="o", label=split)
        ax.set(xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def confusion_matrix(matrix: pd.DataFrame, path: Path, title: str = "") -> None:
    """Counts with true classes as rows, predicted classes as columns."""
    size = 2 + 0.5 * len(matrix)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.to_numpy().max() / 2
    for (i, j), count in pd.DataFrame(matrix.to_numpy()).stack().items():
        ax.text(j, i, int(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def cell_curves(bands: dict[str, pd.DataFrame], metric: str, path: Path) -> None:
    """One line per cell (mean across seeds) with its 95% interval as a band."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bounded = metric.endswith("acc")  # a t interval of 3 seeds can pass 0 or 1; accuracy cannot
    for cell, band in bands.items():
        (line,) = ax.plot(band["epoch"], band["mean"], marker="o", markersize=3, label=cell)
        low, high = (band["low"].clip(0, 1), band["high"].clip(0, 1)) if bounded else (band["low"], band["high"])
        ax.fill_between(band["epoch"], low, high, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric}: mean across seeds, 95% interval")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def cell_accuracy(cells: pd.DataFrame, path: Path, metric: str = "test_acc") -> None:
    """Final metric per cell: mean across seeds with its 95% interval."""
    mean = cells[f"{metric}_mean"]
    err = [(mean - cells[f"{metric}_ci_low"]).fillna(0), (cells[f"{metric}_ci_high"] - mean).fillna(0)]
    fig, ax = plt.subplots(figsize=(7, 1.5 + 0.4 * len(cells)))
    ax.errorbar(mean, range(len(cells)), xerr=err, fmt="o", capsize=4)
    ax.set_yticks(range(len(cells)), [f"{c} (n={n})" for c, n in zip(cells["cell"], cells["n"])])
    ax.set(xlabel=f"{metric} (mean, 95% interval)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
