"""The notebook in notebooks/ runs clean in a real Jupyter kernel: two sweeps in one kernel, their tables and
figures inline, no error output."""
import os

import nbformat
import pytest

from experiments.config import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "lenet_sweeps.ipynb"


def test_the_notebook_runs_two_sweeps_in_one_kernel_with_no_error_output(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("LENET_NOTEBOOK_RUNS", str(tmp_path / "runs"))  # the kernel inherits them
    monkeypatch.setenv("LENET_NOTEBOOK_QUICK", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first cell that fails
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in text and "Warning" not in text
    assert "Best: " in text and "95% CI over 3 seeds" in text  # each sweep's answer, as the command prints it
    assert "main sweep " in text and "seeds sweep " in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the learning curves and the accuracy per recipe, inline
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 3  # the runs, the recipes, the seeds' recipes
    assert os.path.exists(tmp_path / "runs" / "mlflow.db")
