"""The figures a run and a sweep leave: every label on the canvas, at the fixed margins that replaced
tight_layout (which measured every label first and took half of the confusion matrix's time)."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from experiments.analysis import plots

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize("names", [FASHION, [str(d) for d in range(10)], ["cat", "dog", "a-long-name!"]])
def test_a_confusion_matrix_keeps_every_class_name_and_count_inside_the_figure(names):
    counts = np.random.default_rng(0).integers(0, 1000, (len(names), len(names)))
    fig = plots.confusion_figure(pd.DataFrame(counts, index=names, columns=names), "classic+adam seed 0")
    canvas = FigureCanvasAgg(fig)  # what savefig draws a PNG with
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    texts = ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label, ax.title] + ax.texts
    assert {t.get_text() for t in ax.get_xticklabels()} == set(names)
    page = fig.bbox
    for text in texts:
        box = text.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
