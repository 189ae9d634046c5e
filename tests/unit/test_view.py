"""The sweep's saved view in MLflow's UI: the format MLflow 3.17-3.18's UI reads, round-tripped, and skipped in one
line on an MLflow whose UI was not checked (the browser test, tests/commands/test_mlflow_view.py, opens it)."""
import json
import logging

import mlflow

from experiments.analysis import view

# The UI's own lists (MLflow 3.17.2's bundle, 1395 and 3793): the table and chart state a saved view may set, and
# the search facets it takes from one.
UI_STATE = {"selectedColumns", "columnOrder", "columnWidths", "runsExpanded", "runsPinned", "runsHidden",
            "runsVisibilityMap", "runsHiddenMode", "compareRunCharts", "compareRunSections", "viewMaximized",
            "runListHidden", "isAccordionReordered", "groupBy", "groupsExpanded", "autoRefreshEnabled",
            "useGroupedValuesInCharts", "hideEmptyCharts", "globalLineChartConfig", "chartsSearchFilter"}
FACETS = {"searchFilter", "orderByKey", "orderByAsc", "startTime", "lifecycleFilter", "modelVersionFilter",
          "datasetsFilter"}


class Experiment:
    """What write_view needs of a client: an experiment's tags."""

    def __init__(self):
        self.tags = {}

    def set_experiment_tag(self, experiment_id, key, value):
        self.tags[key] = value


def read_view(tags: dict, key: str) -> dict:
    """The state a saved view holds, read as the UI reads it: a JSON envelope whose state is JSON again."""
    outer = json.loads(tags[view.PREFIX + key])
    assert {"name", "createdAt", "updatedAt", "state"} <= set(outer) and isinstance(outer["state"], str)
    return json.loads(outer["state"])


def test_a_saved_view_round_trips_in_the_format_the_ui_reads(monkeypatch):
    monkeypatch.setattr(mlflow, "__version__", view.CHECKED[-1] + "0")  # the format, whichever MLflow is installed
    store = Experiment()
    key = view.write_view(store, "1", "2026-11-30_10-00-00-abcdef", ["model", "optim"], runs=12)
    (tag,) = store.tags
    assert tag == f"mlflow.sharedViewState.{key}"
    state = read_view(store.tags, key)
    assert set(state) <= UI_STATE | FACETS  # nothing the UI does not read
    assert state["searchFilter"] == ("tags.`lenet.sweep_id` = '2026-11-30_10-00-00-abcdef' and "
                                     "tags.`lenet.role` = 'job' and tags.`lenet.superseded` IS NULL")  # those counted
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`score`", False)  # best first
    assert "params.`seed`" not in state["selectedColumns"]  # a group row would show the mean of its seeds
    assert state["groupBy"] == {"aggregateFunction": "average",
                                "groupByKeys": [{"mode": "param", "groupByData": "cell"}]}
    assert state["runsHiddenMode"] == "SHOW_ALL"  # every run, not MLflow's first 10
    assert {c["metricKey"]: c["type"] for c in state["compareRunCharts"]} == {"score": "BAR", "test_acc": "BAR",
                                                                             "val_acc": "LINE"}
    assert all(c["runsCountToCompare"] >= 12 for c in state["compareRunCharts"])
    assert view.write_view(store, "1", "2026-11-30_10-00-00-abcdef", ["model"], runs=4) == key  # one per sweep


def test_an_mlflow_whose_ui_was_not_checked_gets_no_view_and_one_line(monkeypatch, caplog):
    monkeypatch.setattr(mlflow, "__version__", "4.0.0")
    store = Experiment()
    with caplog.at_level(logging.WARNING, logger="experiments.analysis.view"):
        assert view.write_view(store, "1", "s", ["model"], runs=2) is None
    assert store.tags == {} and len(caplog.records) == 1
    assert "checked with MLflow 3.17." in caplog.text and "this is 4.0.0" in caplog.text
