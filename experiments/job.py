"""One job end to end, without Hydra: a composed config in, one MLflow run (or a skip) out.

`experiments.run`'s `@hydra.main` is a thin wrapper around `run_job`; tests call `run_job` with
the compose API. The run's lifecycle is `record.runs.tracked_run`, which always ends it FINISHED,
FAILED or KILLED; what the run leaves behind is `experiments.artifacts`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lenet.data import Data, prepare
from lenet.engine import evaluate, fit, make_optimizer, predict, resolve_device
from lenet.model import LeNet, layer_table, parameter_count

from . import metrics
from .artifacts import Outputs, Predictions, cpu_copy, leave, model_name, model_uri
from .config import NOT_IDENTITY, config_hash, flatten
from .record.runs import RunLog, logged_value, tracked_run
from .record.resume import earlier_result
from .record.schema import CELL, COLLAPSED_AT, CONFIG_HASH, DIVERGED, PARENT, REUSED
from .record.store import Tracking

log = logging.getLogger(__name__)


@dataclass
class Job:
    model: LeNet
    optimizer: torch.optim.Optimizer
    data: Data  # on the device
    device: torch.device
    host_data: Data  # the same on the CPU: what the run's dataset input is hashed from


@dataclass
class JobResult:
    run_id: str
    status: str  # FINISHED, DIVERGED (its run ended FAILED), or SKIPPED (an earlier FINISHED run counted)
    metrics: dict = field(default_factory=dict)

    @property
    def objective(self) -> float:
        """What a sweeper maximises: the best validation accuracy (nan when the run diverged)."""
        return float(self.metrics.get("best_val_acc", math.nan))


def run_job(cfg: DictConfig, tracking: Tracking, name: str, tags: dict, out: Path,
            choices: dict | None = None) -> JobResult:
    """Train the job cfg describes and track it as one MLflow run named name, with tags.

    An earlier FINISHED run of the same config, made by the same library code and with all its files,
    is counted instead (record.resume; cfg.resume=false trains every job again).
    A bad value or missing data raises before any run exists; a failure while training raises
    after the run was ended FAILED. Artifacts are written to out, then logged. choices names the
    config group options (model=classic, ...), logged as params.
    """
    tags = {**tags, CONFIG_HASH: config_hash(cfg)}
    done = earlier_result(tracking.client, tracking.experiment_id, tags[CONFIG_HASH], name,
                          cfg.reuse_other_code) if cfg.resume else None
    if done is not None:
        return skip(tracking, done, name, tags.get(PARENT))
    job = setup(cfg)
    params, settings = run_params(cfg, job, choices or {})
    with tracked_run(tracking, name, tags | settings, out) as run:
        run.params(params)
        run.write(lambda: log_dataset(run, cfg, job.host_data))
        final = train(cfg, job, run, name, out, tracking, model_name((choices or {}).get(CELL) or name, cfg.seed))
        if "diverged_epoch" in final:
            message = f"training loss became {final['train_loss']} at epoch {final['diverged_epoch']}; stopped there"
            run.tags({DIVERGED: final["diverged_epoch"], "error.type": "Diverged", "error.message": message})
            run.outcome, run.outcome_tag = "FAILED", "diverged"
            log.warning("%s diverged: %s", name, message)
            return JobResult(run.run_id, "DIVERGED", {})
    return JobResult(run.run_id, "FINISHED", final)


def setup(cfg: DictConfig) -> Job:
    """Model, optimizer and data, or the first bad value in cfg as an exception (fit checks the trainer's)."""
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    model = instantiate(cfg.model).to(device)
    optimizer = make_optimizer(instantiate(cfg.optim, _convert_="all"), model.parameters(), device)
    host = dataset(cfg, model.input_size)
    return Job(model, optimizer, host.to(device) if device.type != "cpu" else host, device, host)


DATASETS: dict[str, Data] = {}  # this process's datasets, by what they are made of: a sweep's jobs share them


def dataset(cfg: DictConfig, input_size: int) -> Data:
    """The job's data on the CPU, loaded once per process per dataset, geometry, split seed and transform."""
    key = json.dumps([OmegaConf.to_container(cfg.data, resolve=True), input_size, cfg.seed], sort_keys=True)
    if key not in DATASETS:
        if len(DATASETS) >= 4:  # a few geometries x seeds; real MNIST is ~220 MB each
            DATASETS.pop(next(iter(DATASETS)))
        DATASETS[key] = prepare(input_size=input_size, seed=cfg.seed, **cfg.data)
    return DATASETS[key]


def run_params(cfg: DictConfig, job: Job, choices: dict) -> tuple[dict, dict]:
    """Params: the values that change what is computed (the job's identity), the group choices and
    facts derived from them; and tags: the settings that only say where files live or how the run is
    shown (runs_dir, data.root, ...), kept apart so that "compare runs" shows what matters."""
    flat = {k: v for k, v in flatten(cfg).items() if not k.endswith("_partial_")}
    identity = {k: v for k, v in flat.items() if not k.startswith(NOT_IDENTITY)}
    settings = {f"lenet.config.{k}": v for k, v in flat.items() if k.startswith(NOT_IDENTITY)}
    params = {group: choices.get(group) for group in ("model", "optim", "data", CELL)} | identity | {
        "parameter_count": parameter_count(job.model), "input_size": job.model.input_size,
        "device_used": str(job.device), "torch_version": torch.__version__,
        "train_size": len(job.data.train), "val_size": len(job.data.val) if job.data.val else 0,
        "test_size": len(job.data.test),
    }
    return params, settings


def log_dataset(run: RunLog, cfg: DictConfig, data: Data) -> None:
    """The transformed dataset as the run's input (MLflow's Dataset column): name, digest, split sizes."""
    splits = {"train": data.train, "validation": data.val, "test": data.test}
    side = data.train.images.shape[-1]
    run.dataset(
        name=cfg.data.name, digest=digest(data),
        source={"dataset": cfg.data.name, "fit_to_input": cfg.data.fit_to_input, "normalize": cfg.data.normalize},
        schema=tensor_schema(side),
        profile={name: len(split) for name, split in splits.items() if split is not None})


def tensor_schema(side: int) -> dict:
    """The dataset's schema as MLflow writes a tensor dataset's (its panel reads mlflow_tensorspec)."""
    def spec(name: str, dtype: str, shape: list) -> str:
        return json.dumps([{"name": name, "type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}])

    return {"mlflow_tensorspec": {"features": spec("image", "float32", [-1, 1, side, side]),
                                  "targets": spec("label", "int64", [-1])}}


DIGESTS: dict[int, tuple[Data, str]] = {}  # id(data) -> (data, its digest): each dataset is hashed once


def digest(data: Data) -> str:
    """A dataset's fingerprint: every split's images and labels, hashed in place (no copy of their bytes)."""
    if id(data) not in DIGESTS:  # the entry keeps data alive, so its id is not reused meanwhile
        sha = hashlib.sha1()
        for split in (data.train, data.val, data.test):
            if split is not None:
                for tensor in (split.images, split.labels):
                    sha.update(np.ascontiguousarray(tensor.numpy()))
        DIGESTS[id(data)] = (data, sha.hexdigest()[:16])
    return DIGESTS[id(data)][1]


def progress(cfg: DictConfig, name: str):
    """Per-epoch reporting: a bar on a terminal, one plain line per epoch otherwise."""
    epochs, mode = cfg.trainer.epochs, cfg.trainer.progress
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc=name, unit="epoch", leave=True)

        def report(row):
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}", refresh=False)
            bar.update()

        return report, bar.close

    shown = metrics.where(metrics.PROGRESS)

    def line(row):
        values = " ".join(f"{m.name} {row[m.name]:{m.fmt}}" for m in shown)
        log.info("%s epoch %d/%d: %s", name, row["epoch"], epochs, values)

    return line, lambda: None


def test_predictions(job: Job) -> tuple[float, float, Predictions]:
    """The best model's test loss and accuracy, and its per-sample predictions (on the CPU)."""
    logits = predict(job.model, job.data.test)
    confidence, predicted = logits.softmax(1).max(1)
    labels = job.data.test.labels
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    accuracy = (predicted == labels).float().mean().item()
    return loss, accuracy, Predictions(labels.cpu(), predicted.cpu(), confidence.cpu(), job.data.classes)


def train(cfg: DictConfig, job: Job, run: RunLog, name: str, out: Path, tracking: Tracking, model: str) -> dict:
    """Fit and evaluate the best and the last model on the test set; the run's files are written after
    (experiments.artifacts), in the background where another job follows on a GPU; model: its MLflow model's
    name."""
    outputs = Outputs(name, OmegaConf.to_yaml(cfg, resolve=True), layer_table(job.model), [])

    def on_epoch(row):
        run.still_mine()  # a process paused past the heartbeat timeout stops here, its run left as it was closed
        run.metrics({k: row[k] for k in metrics.per_epoch()}, step=row["epoch"])
        report(row)

    report, close = progress(cfg, name)
    try:
        result = fit(job.model, job.optimizer, job.data, cfg.trainer.epochs, cfg.trainer.batch_size,
                     seed=cfg.seed, on_epoch=on_epoch, compile=cfg.trainer.compile,
                     limit_batches=cfg.trainer.limit_batches)
    finally:
        close()
    outputs.history = result.history
    train_seconds = float(sum(row["epoch_seconds"] for row in result.history))
    if result.diverged_epoch is not None:  # no test metrics: a diverged model's accuracy means nothing
        run.metrics({"train_seconds": train_seconds}, step=0)  # the time it did spend training
        leave(tracking, run, outputs, out)
        return {"diverged_epoch": result.diverged_epoch, "train_loss": result.history[-1]["train_loss"]}

    # Where the best epoch is the last, the model that trained is the best one: one test pass gives both its
    # metrics (the same numbers; 45 ms a run on mnist5k, 10x that on full MNIST, on 2 cores).
    last = None if result.best_epoch == len(result.history) else evaluate(job.model, job.data.test)
    job.model.load_state_dict(result.best_state)
    test_loss, test_acc, outputs.predictions = test_predictions(job)
    last_loss, last_acc = last or (test_loss, test_acc)
    outputs.best_state = {k: v.cpu() for k, v in result.best_state.items()}
    outputs.model = cpu_copy(job.model) if cfg.mlflow.log_model else None

    val_accs = [row["val_acc"] for row in result.history]
    final = {
        "test_loss": test_loss, "test_acc": test_acc, "last_test_loss": last_loss, "last_test_acc": last_acc,
        "best_val_acc": float(max(val_accs)) if job.data.val else float("nan"),
        "best_epoch": result.best_epoch, "train_seconds": train_seconds,
        "train_samples_per_second": result.samples_per_epoch * len(result.history) / train_seconds,
    }
    assert set(final) == set(metrics.final()), "experiments.metrics lists every final metric a job logs"
    final = {k: logged_value(v) for k, v in final.items()}  # as logged, so a resumed job's values agree
    # Step 0, not the last epoch: MLflow's charts then show one value per run (a bar), and the model
    # logged next carries these as its metrics (MLflow copies a run's step-0 metrics to its model).
    run.metrics(final, step=0, params={"step_kind": result.step_kind})
    run.outcome_tag = "collapsed" if test_acc <= COLLAPSED_AT else "ok"
    outputs.model_name = model
    leave(tracking, run, outputs, out)
    log.info("%s: test_acc %.4f (best epoch %d), last test_acc %.4f, %.1f s training%s",
             name, test_acc, result.best_epoch, last_acc, train_seconds,
             f"; model {model_uri(run.run_id, model)}" if outputs.model is not None else "")
    return final


def skip(tracking: Tracking, done, name: str, parent_run_id: str | None) -> JobResult:
    """Count an earlier FINISHED run of this very config instead of training it again."""
    log.info("%s: skipped, already FINISHED as run %s (resume=false reruns it)", name, done.info.run_id)
    if parent_run_id and done.data.tags.get(PARENT) != parent_run_id:
        tracking.client.set_tag(parent_run_id, f"{REUSED}{done.info.run_id}", name)
    return JobResult(done.info.run_id, "SKIPPED", dict(done.data.metrics))
