"""What a finished job leaves in its run: its files (config, layers, history, curves, predictions with class
names, the confusion matrix, the best weights), its MLflow model and its dataset input.

The job computes everything on its device first (`Outputs`); writing it out needs only the CPU, so it can
run in the background while the next job trains (record.finishing).
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from lenet.atomic import atomic_write
from lenet.model import LeNet

from .record.client import patiently
from .record.runs import RunLog
from .record.schema import ARTIFACTS, MODEL
from .record.store import Tracking

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """The best model's view of the test set, on the CPU."""

    labels: torch.Tensor  # (N,) int64
    predicted: torch.Tensor  # (N,) int64
    confidence: torch.Tensor  # (N,) float32: the predicted class's softmax probability
    classes: list[str]

    def confusion(self) -> torch.Tensor:
        n = len(self.classes)
        return torch.bincount(self.labels * n + self.predicted, minlength=n * n).reshape(n, n)


@dataclass
class Outputs:
    """Everything a run's files are made from, computed by the job (tensors on the CPU)."""

    name: str
    config_yaml: str
    layers: str
    history: list[dict]
    best_state: dict | None = None  # None for a run that diverged
    predictions: Predictions | None = None
    model: LeNet | None = None  # a CPU copy of the best model, for MLflow's model format; None: not logged
    model_name: str = "model"  # its name in MLflow: which recipe and seed it is (model_name)


def model_name(cell: str, seed: int) -> str:
    """An MLflow model's name that says which recipe and seed it is: classic-adam-seed0 (MLflow takes no . / : % in
    one, so classic+model.pool=max becomes classic-model-pool-max)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{cell}-seed{seed}").strip("-")


def model_uri(run_id: str, name: str) -> str:
    """What a user passes to mlflow.pytorch.load_model or `mlflow models predict -m`: the run and its model's name
    (MLflow 3 keeps a logged model apart from the run's artifacts, so runs:/<id>/model finds nothing)."""
    return f"runs:/{run_id}/{name}"


def write_files(outputs: Outputs, out: Path) -> None:
    """The run's files into out, each whole or not at all (lenet.atomic)."""
    import pandas as pd

    from .analysis import plots

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(outputs.config_yaml)
    (out / "layers.txt").write_text(outputs.layers + "\n")
    history = pd.DataFrame(outputs.history)
    history.to_csv(out / "history.csv", index=False)
    plots.learning_curves(history, out / "learning_curves.png", title=outputs.name)
    if outputs.best_state is not None:
        atomic_write(out / "model_best.pt", lambda tmp: torch.save(outputs.best_state, tmp))
    if outputs.predictions is not None:
        write_predictions(outputs.predictions, out, outputs.name)


def write_predictions(p: Predictions, out: Path, name: str) -> None:
    """Per-sample predictions with class names, and the confusion matrix (CSV and PNG)."""
    import pandas as pd

    from .analysis import plots

    matrix = pd.DataFrame(p.confusion().numpy(), index=p.classes, columns=p.classes)
    matrix.to_csv(out / "confusion_matrix.csv", index_label="true \\ predicted")
    plots.confusion_matrix(matrix, out / "confusion_matrix.png", title=f"{name}: test set")
    pd.DataFrame({
        "index": range(len(p.labels)),
        "label": p.labels.numpy(),
        "label_name": [p.classes[i] for i in p.labels.tolist()],
        "predicted": p.predicted.numpy(),
        "predicted_name": [p.classes[i] for i in p.predicted.tolist()],
        "confidence": p.confidence.numpy(),
    }).to_csv(out / "predictions.csv", index=False)


def log_model(tracking: Tracking, run: RunLog, model: LeNet, name: str) -> None:
    """The best model in MLflow's PyTorch format, named for its recipe and seed: with its signature, an input
    example and the lenet package, so that `mlflow.pytorch.load_model(<the run's lenet.model tag>)` (runs:/<id>/
    <name>) and `mlflow models predict` work from the run alone. model: a CPU copy of its own."""
    import lenet
    import mlflow.pytorch
    from mlflow.models import Model, infer_signature

    example = torch.zeros(2, model.in_channels, model.input_size, model.input_size).numpy()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        signature = infer_signature(example, model(torch.from_numpy(example)).numpy())
    model.train(was_training)
    mlflow.set_tracking_uri(tracking.client.tracking_uri)
    mlflow.set_experiment(experiment_id=tracking.experiment_id)  # the model belongs to its run's experiment
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # its pickle warning: our own model, our code
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    # mlflow.pytorch.log_model is Model.log with this flavor; called here to pass validate_serving_input=False:
    # MLflow would reload the model it has just saved and predict on the example (30 of its 90 ms a run), to
    # check what tests/commands/test_end_to_end.py checks once (load_model, `mlflow models predict`).
    patiently(tracking.client, Model.log, artifact_path=None, name=name, flavor=PytorchFlavor,
              flavor_name="mlflow.pytorch", pytorch_model=model, pickle_module=mlflow.pytorch.pickle_module,
              signature=signature, input_example=example, run_id=run.run_id, serialization_format="pickle",
              code_paths=[str(Path(lenet.__file__).parent)], pip_requirements=[torch_pin],
              validate_serving_input=False)


class PytorchFlavor:
    """mlflow.pytorch as Model.log's flavor, minus Model.log's own validate_serving_input, which it also hands
    the flavor's save_model (whose other arguments go to torch.save)."""

    @staticmethod
    def save_model(*, validate_serving_input: bool = True, **kwargs):
        import mlflow.pytorch

        return mlflow.pytorch.save_model(**kwargs)


def cpu_copy(model: LeNet) -> LeNet:
    """The model as MLflow stores it: on the CPU, apart from the one that trained (a device's tensors are
    the training thread's to touch)."""
    return copy.deepcopy(model).cpu()


def leave(tracking: Tracking, run: RunLog, outputs: Outputs, out: Path) -> None:
    """Write the run's files and log them, then its MLflow model: in the background where it is enabled."""
    def write() -> None:
        write_files(outputs, out)
        run.artifacts(out)
        tags = {ARTIFACTS: ",".join(sorted(path.name for path in out.iterdir()))}  # what resume checks is there
        if outputs.model is not None:
            log_model(tracking, run, outputs.model, outputs.model_name)
            tags[MODEL] = model_uri(run.run_id, outputs.model_name)
        run.tags(tags)  # once all is logged, in one call: a run that stopped before says none of it

    run.write(write)
