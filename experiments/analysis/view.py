"""The sweep as a ready view in MLflow's UI, opened by the link the sweep prints: its runs only, grouped by
recipe (the derived param `cell`, every swept value but the seed) with each group's runs listed under it,
every run shown (failed ones too), the swept params, the outcome and the metrics as columns, and charts of
test accuracy per recipe and the validation accuracy curves with their band.

MLflow 3.17-3.18's UI keeps its saved run-table views as experiment tags (`mlflow.sharedViewState.<key>`) and opens
one from `?viewStateShareKey=<key>`: a JSON envelope {name, createdAt, updatedAt, state} whose state is the UI's
own search facets and table/chart state, as JSON. That format is the UI's, not an API: it is written only for
the MLflow versions it was checked with (tests/commands/test_mlflow_view.py opens it in a real browser), and on
any other a sweep says so in one line and goes on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shlex
import time

import mlflow

from ..metrics import CHART, VIEW, where
from ..record.schema import CELL, OUTCOME, ROLE, SUPERSEDED, SWEEP_ID

log = logging.getLogger(__name__)

PREFIX = "mlflow.sharedViewState."
RUN_NAME = "attributes.`Run Name`"  # the runs table's name column, as the UI's grid knows it
CHECKED = ("3.17.", "3.18.")  # MLflow versions whose UI was seen to open this view


def supported() -> bool:
    return mlflow.__version__.startswith(CHECKED)


def column(kind: str, key: str) -> str:
    """A column's key as the UI writes it: params.`model`, metrics.`test_acc`, tags.`lenet.outcome`."""
    return f"{kind}.`{key}`"


CHART_TITLES = {  # what each chart of experiments.metrics' CHART says it shows
    "score": "score per recipe (test_acc, failed runs at chance 0.1: every recipe has a bar)",
    "test_acc": "test_acc per recipe (mean over its runs that trained)",
    "val_acc": "val_acc by epoch (mean and range over its runs)",
}


def chart(metric, section: str, sweep_id: str, runs: int) -> dict:
    """A bar per recipe of a final metric, or its curves by epoch for a per-epoch one."""
    made = {"uuid": f"{metric.name.replace('_', '-')}-{sweep_id}", "type": "LINE" if metric.per_epoch else "BAR",
            "runsCountToCompare": max(runs, 10), "metricSectionId": section, "deleted": False, "isGenerated": False,
            "displayName": CHART_TITLES.get(metric.name, metric.name), "metricKey": metric.name}
    if metric.per_epoch:
        made |= {"selectedMetricKeys": [metric.name], "lineSmoothness": 0, "xAxisScaleType": "linear",
                 "scaleType": "linear", "range": {}, "xAxisKey": "step", "selectedXAxisMetricKey": "",
                 "yAxisKey": "metric", "yAxisExpressions": [], "ignoreOutliers": False, "useGlobalXaxisKey": False,
                 "useGlobalLineSmoothing": False}
    return made


def state(sweep_id: str, factors: list[str], runs: int) -> dict:
    """The UI state of the sweep's view: the search facets and the table and chart settings it reads."""
    section = f"recipes-{sweep_id}"
    charted = sorted(where(CHART), key=lambda m: (m.per_epoch, m.name != "score"))  # bars first, score first
    charts = [chart(m, section, sweep_id, runs) for m in charted]
    shown = sorted(where(VIEW), key=lambda m: m.name != "score")
    metric_columns = [column("metrics", m.name) for m in shown]
    return {
        # Its runs that count: a run another run of its config superseded (record.attempts) is left out.
        "searchFilter": f"tags.`{SWEEP_ID}` = '{sweep_id}' and tags.`{ROLE}` = 'job' and tags.`{SUPERSEDED}` IS NULL",
        # Best first: the UI orders runs, and groups by their first run; it cannot order groups by their mean.
        "orderByKey": column("metrics", "score"), "orderByAsc": False, "startTime": "ALL", "lifecycleFilter": "Active",
        "datasetsFilter": [], "modelVersionFilter": "All Runs",
        # No seed column: a group row would show the mean of its seeds; each run's name says its seed.
        "selectedColumns": [column("params", CELL), *(column("params", f) for f in factors), column("tags", OUTCOME),
                            *metric_columns],
        # The answer's columns first, wide enough for a recipe's name ("Group: classic+model.pool=max")
        "columnOrder": [RUN_NAME, column("params", CELL), column("tags", OUTCOME), *metric_columns[:3],
                        *(column("params", f) for f in factors)],
        "columnWidths": {RUN_NAME: 290, column("params", CELL): 170, column("tags", OUTCOME): 110},
        "runsHiddenMode": "SHOW_ALL",
        "compareRunCharts": charts,
        "compareRunSections": [{"uuid": section, "name": "Recipes", "display": True, "isReordered": False,
                                "deleted": False, "isGenerated": False}],
        "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False,
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "param", "groupByData": CELL}]},
        "groupsExpanded": {}, "useGroupedValuesInCharts": True, "hideEmptyCharts": True,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def envelope(name: str, view: dict, now_ms: int | None = None) -> str:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(view)})


def write_view(client, experiment_id: str, sweep_id: str, factors: list[str], runs: int) -> str | None:
    """Save the sweep's view on its experiment; its key (for ?viewStateShareKey=), or None where this MLflow's
    UI was not checked to read it (said in one line)."""
    if not supported():
        log.warning("no ready view of this sweep in MLflow's UI: its saved-view format was checked with MLflow %s, "
                    "this is %s (the runs and the summary are all there)", " and ".join(CHECKED), mlflow.__version__)
        return None
    key = hashlib.sha1(f"lenet-sweeps:{sweep_id}".encode()).hexdigest()[:16]
    client.set_experiment_tag(experiment_id, PREFIX + key,
                              envelope(f"sweep {sweep_id} by recipe", state(sweep_id, factors, runs)))
    return key


def where_to_look(tracking_uri: str, experiment_id: str, parent_id: str, view: str | None = None) -> str:
    """The command that opens the MLflow UI on this store, and the addresses of the sweep's ready view, of its
    parent run (the summary) and of the experiment's runs; the first visit to MLflow 3's UI asks to pick its
    "Model training" view once (the links ask for it; the UI keeps the choice in the browser)."""
    if tracking_uri.startswith(("http://", "https://")):
        base, start = tracking_uri.rstrip("/"), ""
    else:
        command = f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)} --port 5000"  # pasteable as it is
        base, start = "http://127.0.0.1:5000", f"{command}, then "
    runs = f"{base}/#/experiments/{experiment_id}/runs"
    mode = "workflowType=machine_learning"  # MLflow 3.17-3.18's UI: its Model training view, not GenAI's
    ready = f"{runs}?{mode}&viewStateShareKey={view}" if view else f"{runs}?{mode}"
    return (f"See it in MLflow: {start}open {ready} (the sweep by recipe; its summary: {runs}/{parent_id}?{mode}; "
            f"if MLflow shows GenAI pages, click \"Model training\" at the top once)")
