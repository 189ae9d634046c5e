"""One place for every metric (experiments.metrics): what the engine reports, the job logs, and the tables, curves,
progress line and saved view show are all read from it."""
from experiments import metrics
from experiments.analysis import outcomes, results, view
from lenet.engine import EPOCH_METRICS


def test_the_engine_reports_every_per_epoch_metric_the_registry_names():
    assert set(EPOCH_METRICS) == set(metrics.per_epoch())


def test_the_tables_and_the_view_show_what_the_registry_says():
    columns = {c.name for c in results.COLUMNS}
    assert {m.column for m in metrics.where(metrics.RUNS)} <= columns
    assert outcomes.METRICS == tuple(m.name for m in metrics.where(metrics.CELLS))
    state = view.state("s", ["model"], 4)
    assert {c["metricKey"] for c in state["compareRunCharts"]} == {m.name for m in metrics.where(metrics.CHART)}
    assert {c.split("`")[1] for c in state["selectedColumns"] if c.startswith("metrics.")} == \
        {m.name for m in metrics.where(metrics.VIEW)}


def test_a_metric_added_to_the_registry_is_charted_and_shown_without_another_change(monkeypatch):
    added = metrics.metric("val_top2_acc", True, metrics.ACCURACY, ".4f", (metrics.CHART, metrics.VIEW))
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, added))
    state = view.state("s", ["model"], 4)
    (line,) = [c for c in state["compareRunCharts"] if c["metricKey"] == "val_top2_acc"]
    assert line["type"] == "LINE" and "metrics.`val_top2_acc`" in state["selectedColumns"]
