"""Learning curves and confusion matrices as PNG files.

Figures are matplotlib `Figure`s made directly, not through pyplot: no display is needed, no backend is chosen
for the process (a notebook that runs sweeps keeps its inline plots), and nothing is left open in pyplot's list
of figures to be closed.
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import imsave
from matplotlib.path import Path as Outline
from matplotlib.textpath import TextPath
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D


def figure(*size: float, rows: int = 1, columns: int = 1):
    """A figure of this size in inches and its axes."""
    fig = Figure(figsize=size)
    return fig, fig.subplots(rows, columns)


def learning_curves(history: pd.DataFrame, path: Path, title: str = "") -> None:
    """Loss and accuracy against epoch, train vs validation, side by side."""
    save_png(curves_canvas().draw(history, title), path)


def confusion_matrix(matrix: pd.DataFrame, path: Path, title: str = "") -> None:
    """Counts with true classes as rows, predicted classes as columns, each written in its square."""
    save_png(confusion_canvas(tuple(matrix.index), tuple(matrix.columns)).draw(matrix.to_numpy(), title), path)


def save_png(pixels: np.ndarray, path: Path) -> None:
    """A canvas's RGBA pixels as a PNG at 100 dpi. zlib level 1: a third of the encoding time of savefig's level 6,
    for files about 1.3x larger (60 kB for a confusion matrix)."""
    imsave(path, pixels, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})


DPI = 100


class CurvesCanvas:
    """The learning-curves figure, made once per process and redrawn for each run: building a figure's axes,
    ticks and legend cost as much as drawing it (0.19-0.21 s -> 0.10-0.13 s a run on 2 cores). Its margins are fixed, as
    tight_layout measured every label first (50 ms)."""

    SPLITS = ("train", "val")

    def __init__(self):
        self.fig, axes = figure(9, 3.5, columns=2)
        self.canvas = FigureCanvasAgg(self.fig)
        self.axes = dict(zip(("loss", "acc"), axes))
        self.lines, self.empty = {}, {}
        for metric, ax in self.axes.items():
            for split in self.SPLITS:
                (self.lines[metric, split],) = ax.plot([], [], marker="o", label=split)
            ax.set(xlabel="epoch", ylabel=metric)
            ax.grid(alpha=0.3)
            # Whole epochs on x, a handful of values on y: each tick label is a text laid out and rendered on
            # every draw, and text was most of this figure's time (2 cores, 1 epoch: 78-99 -> 52-55 ms a run)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=1))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            # a run that diverged in its first epoch has no finite loss to draw
            self.empty[metric] = ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                                         transform=ax.transAxes)
        self.title = self.fig.suptitle("")
        self.fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.86, wspace=0.25)
        self.lock = threading.Lock()  # one run's figure at a time (the background writer draws them too)

    def draw(self, history: pd.DataFrame, title: str) -> np.ndarray:
        """The figure for this history, as RGBA pixels (a copy: the canvas is the next run's)."""
        with self.lock:
            for metric, ax in self.axes.items():
                shown = []
                for split in self.SPLITS:
                    column, line = f"{split}_{metric}", self.lines[metric, split]
                    drawn = history[column].notna().any()
                    line.set_data(history["epoch"], history[column]) if drawn else line.set_data([], [])
                    line.set_visible(bool(drawn))
                    shown += [line] if drawn else []
                if ax.get_legend() is not None:
                    ax.get_legend().remove()
                if shown:
                    ax.legend(handles=shown)
                self.empty[metric].set_visible(not shown)
                ax.relim()
                if shown:
                    ax.autoscale_view()
                    ax.set_xlim(0.5, history["epoch"].max() + 0.5)  # one epoch is a point at 1, not 0.94-1.06
                else:  # nothing to scale to: an empty axes' limits, not the last run's
                    ax.set(xlim=(0, 1), ylim=(0, 1))
                    ax.set_autoscale_on(True)
            self.title.set_text(title)
            self.canvas.draw()
            return np.array(self.canvas.buffer_rgba())


@functools.lru_cache(maxsize=1)
def curves_canvas() -> CurvesCanvas:
    return CurvesCanvas()


class ConfusionCanvas:
    """The confusion-matrix figure for one list of class names, made once per process and redrawn for each run.

    Its frame (axes, ticks, class names, axis labels) is drawn once and kept as pixels; each matrix draws only its
    squares, the frame's edges over them, its counts and its title on a copy of them (blitting). The counts are one
    collection of glyph outlines, not 100 texts: laying out and rendering each text took 70% of the figure's time.
    On 2 cores: 0.21-0.26 s a run -> 0.04-0.05 s."""

    FONT_PT = 7  # the counts' size

    def __init__(self, rows: tuple[str, ...], columns: tuple[str, ...]):
        size = 2 + 0.5 * len(rows)
        self.fig, self.ax = figure(size + 1, size)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.ax
        self.image = ax.imshow(np.zeros((len(rows), len(columns))), cmap="Blues", animated=True)
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set(xlabel="predicted", ylabel="true")
        self.title = ax.set_title("", animated=True)
        for spine in ax.spines.values():
            spine.set_animated(True)  # drawn over the squares, which cover the inner half of each edge
        self.counts = PathCollection([], offsets=np.zeros((0, 2)), offset_transform=ax.transData,
                                     transform=Affine2D().scale(DPI / 72), edgecolors="none", animated=True)
        ax.add_collection(self.counts, autolim=False)
        self.glyphs = Glyphs(self.FONT_PT)
        # Fixed margins, in inches, wide enough for a class name of 12 characters turned 45 degrees (Fashion-MNIST's
        # "T-shirt/top"): tight_layout measured every label first, and took half the figure's time.
        width, height = self.fig.get_size_inches()
        self.fig.subplots_adjust(left=1.3 / width, right=1 - 0.2 / width, bottom=1.3 / height, top=1 - 0.5 / height)
        self.canvas.draw()  # everything not animated: the frame
        self.frame = self.canvas.copy_from_bbox(self.fig.bbox)
        self.lock = threading.Lock()  # one run's figure at a time (the background writer draws them too)

    def draw(self, counts: np.ndarray, title: str) -> np.ndarray:
        """The figure for these counts, as RGBA pixels (a copy: the canvas is the next run's)."""
        with self.lock:
            self.canvas.restore_region(self.frame)
            self.image.set_data(counts)
            self.image.set_clim(counts.min(), counts.max())
            threshold = counts.max() / 2
            rows, columns = np.indices(counts.shape)
            self.counts.set_paths([self.glyphs.centred(str(int(c))) for c in counts.flat])
            self.counts.set_offsets(np.column_stack([columns.ravel(), rows.ravel()]))
            self.counts.set_facecolors(["white" if c > threshold else "black" for c in counts.flat])
            self.title.set_text(title)
            for artist in (self.image, *self.ax.spines.values(), self.counts, self.title):
                self.ax.draw_artist(artist)
            return np.array(self.canvas.buffer_rgba())


@functools.lru_cache(maxsize=4)  # a few datasets' class names
def confusion_canvas(rows: tuple[str, ...], columns: tuple[str, ...]) -> ConfusionCanvas:
    return ConfusionCanvas(rows, columns)


class Glyphs:
    """Whole numbers as glyph outlines (in points) centred on the origin, built from each digit's outline: the
    default font's digits all have the same advance, so a number is its digits side by side."""

    def __init__(self, size_pt: float):
        prop = FontProperties(size=size_pt)
        self.digit = {d: TextPath((0, 0), d, prop=prop) for d in "0123456789"}
        self.advance = ink(TextPath((0, 0), "00", prop=prop))[1][0] - ink(self.digit["0"])[1][0]
        boxes = [ink(path) for path in self.digit.values()]
        self.middle_y = (min(low[1] for low, _ in boxes) + max(high[1] for _, high in boxes)) / 2

    def centred(self, number: str) -> Outline:
        left = ink(self.digit[number[0]])[0][0]
        right = (len(number) - 1) * self.advance + ink(self.digit[number[-1]])[1][0]
        x0 = (left + right) / 2
        return Outline.make_compound_path(*(self.digit[d].transformed(Affine2D().translate(i * self.advance - x0,
                                                                                          -self.middle_y))
                                         for i, d in enumerate(number)))


def ink(path: Outline) -> tuple[np.ndarray, np.ndarray]:
    """The lower-left and upper-right corners of a glyph's outline points (a closing point's vertex is not one)."""
    points = path.vertices[path.codes != Outline.CLOSEPOLY]
    return points.min(0), points.max(0)


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
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=1))
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
