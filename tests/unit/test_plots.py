"""The figures a run and a sweep leave: every label on the canvas, at the fixed margins that replaced
tight_layout (which measured every label first and took half of the confusion matrix's time), and each run's
figure its own although the canvas it is drawn on is reused from run to run."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from experiments.analysis import plots

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def counts(names, seed=0):
    return np.random.default_rng(seed).integers(0, 1000, (len(names), len(names)))


@pytest.mark.parametrize("names", [FASHION, [str(d) for d in range(10)], ["cat", "dog", "a-long-name!"]])
def test_a_confusion_matrix_keeps_every_class_name_and_count_inside_the_figure(names):
    canvas = plots.ConfusionCanvas(tuple(names), tuple(names))
    canvas.draw(counts(names), "classic+adam seed 0")
    renderer = canvas.canvas.get_renderer()
    ax = canvas.ax
    assert {t.get_text() for t in ax.get_xticklabels()} == set(names)
    assert len(canvas.counts.get_paths()) == len(names) ** 2  # a count in every square
    texts = ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label, ax.title]
    page = canvas.fig.bbox
    for artist in [*texts, canvas.counts]:
        box = artist.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, artist


def test_each_count_is_centred_in_its_square_in_the_colour_that_reads_on_it():
    matrix = np.array([[900, 7], [12, 0]])
    canvas = plots.ConfusionCanvas(("a", "b"), ("a", "b"))
    canvas.draw(matrix, "x")
    centres = [path.get_extents().get_points().mean(0) for path in canvas.counts.get_paths()]
    assert np.allclose(centres, 0, atol=0.05)  # in points, around each square's centre (its offset)
    assert canvas.counts.get_offsets().tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]  # (column, row)
    white = [tuple(c) == (1, 1, 1, 1) for c in canvas.counts.get_facecolors()]
    assert white == [True, False, False, False]  # only 900 is above half the largest count


def test_a_reused_confusion_canvas_draws_each_matrix_as_a_fresh_one_does():
    reused = plots.ConfusionCanvas(tuple(FASHION), tuple(FASHION))
    first = reused.draw(counts(FASHION, 1), "classic+adam seed 0")
    second = reused.draw(counts(FASHION, 2), "d2l+sgd seed 1")
    assert not np.array_equal(first, second)
    assert np.array_equal(second, plots.ConfusionCanvas(tuple(FASHION), tuple(FASHION)).draw(counts(FASHION, 2),
                                                                                            "d2l+sgd seed 1"))
    assert np.array_equal(reused.draw(counts(FASHION, 1), "classic+adam seed 0"), first)


def history(epochs: int, val: bool = True, finite: bool = True) -> pd.DataFrame:
    rows = [dict(epoch=e, train_loss=2 / e if finite else np.nan, train_acc=1 - 0.5 / e,
                 val_loss=2.2 / e if val else np.nan, val_acc=1 - 0.6 / e if val else np.nan)
            for e in range(1, epochs + 1)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("before", [history(18), history(3, val=False), history(1, val=False, finite=False)])
@pytest.mark.parametrize("after", [history(5), history(2, val=False), history(1, val=False, finite=False)])
def test_a_reused_curves_canvas_keeps_nothing_of_the_run_before(before, after):
    reused = plots.CurvesCanvas()
    reused.draw(before, "before")
    assert np.array_equal(reused.draw(after, "after"), plots.CurvesCanvas().draw(after, "after"))


@pytest.mark.parametrize("epochs", [1, 3, 18])
def test_the_curves_mark_whole_epochs_and_every_epoch_lies_inside_the_axes(epochs):
    canvas = plots.CurvesCanvas()
    canvas.draw(history(epochs), "x")
    for ax in canvas.axes.values():
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)  # a 1-epoch run: "1", not 0.94, 0.96, ...
        assert low < 1 and high > epochs and len(ax.get_yticks()) <= 7


def test_a_diverged_run_says_it_has_no_finite_loss_and_no_legend_is_left_over():
    canvas = plots.CurvesCanvas()
    canvas.draw(history(4), "x")
    canvas.draw(history(1, val=False, finite=False), "y")
    loss = canvas.axes["loss"]
    assert canvas.empty["loss"].get_visible() and loss.get_legend() is None
    assert [t.get_text() for t in canvas.axes["acc"].get_legend().get_texts()] == ["train"]


def test_the_png_files_hold_the_drawn_pixels(tmp_path):
    plots.confusion_matrix(pd.DataFrame(counts(FASHION), index=FASHION, columns=FASHION), tmp_path / "m.png", "t")
    plots.learning_curves(history(3), tmp_path / "c.png", "t")
    expected = plots.confusion_canvas(tuple(FASHION), tuple(FASHION)).draw(counts(FASHION), "t")
    with Image.open(tmp_path / "m.png") as png:
        assert png.info["dpi"] == pytest.approx((plots.DPI, plots.DPI), abs=0.01)
        assert np.array_equal(np.asarray(png.convert("RGBA")), expected)
    with Image.open(tmp_path / "c.png") as png:
        assert png.size == (900, 350)
