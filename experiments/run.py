"""python -m experiments.run [-m] model=classic,d2l optim=sgd,adam ...

Each job trains one LeNet variant and tracks it as one MLflow run; a multirun's jobs are the
children of one parent run for the sweep (see experiments.sweep.SweepCallback).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lenet.data import Data, prepare
from lenet.engine import EPOCH_METRICS, check_trainer, evaluate, fit, make_optimizer, predict, resolve_device
from lenet.model import LeNet, layer_table, parameter_count

from . import plots
from .config import CONF_DIR, config_hash, fast_exit, flatten, register_resolvers
from .validate import BadInput, check_command
from .tracking import CONFIG_HASH, DIVERGED, REUSED, ROLE, SWEEP_ID, RunLog, connect, finished_run, read_sweep

log = logging.getLogger("experiments.run")


class JobError(CompactHydraException):
    """A job's failure, which Hydra prints as this one line (no traceback)."""


@dataclass
class Job:
    model: LeNet
    optimizer: torch.optim.Optimizer
    data: Data
    device: torch.device


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if isinstance(err, (ValueError, RuntimeError)) and text else f"{type(err).__name__}: {text}"


def share_cores() -> None:
    """Jobs running side by side (hydra/launcher=joblib) split the cores instead of oversubscribing them."""
    concurrent = HydraConfig.get().launcher.get("n_jobs")
    if concurrent:
        cores = os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // (cores if concurrent < 0 else concurrent)))


def setup(cfg: DictConfig) -> Job:
    """Model, optimizer and data, or the first bad value in cfg as an exception."""
    check_trainer(cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.compile)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        share_cores()
    model = instantiate(cfg.model).to(device)
    optimizer = make_optimizer(instantiate(cfg.optim, _convert_="all"), model.parameters(), device)
    data = prepare(input_size=model.input_size, seed=cfg.seed, **cfg.data).to(device)
    return Job(model, optimizer, data, device)


def job_identity(cfg: DictConfig) -> tuple[str, dict, dict | None]:
    """The run's name, its tags, and the sweep it belongs to, if any.

    The name is the job's overrides; in a sweep, only those of the swept keys
    (model=classic,optim=adam), since the rest are the same for every job.
    """
    hc = HydraConfig.get()
    sweep = read_sweep(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    named = [o for o in hc.overrides.task if not sweep or o.split("=", 1)[0] in sweep["swept"]]
    name = ",".join(named or hc.overrides.task) or "defaults"
    tags = {ROLE: "job", "hydra.overrides": " ".join(hc.overrides.task)}
    if sweep:
        tags |= {"mlflow.parentRunId": sweep["run_id"], SWEEP_ID: sweep["sweep_id"], "hydra.job_num": hc.job.num}
    return name, tags, sweep


def run_params(cfg: DictConfig, job: Job) -> dict:
    """The resolved config, flattened, plus facts derived from it."""
    choices = HydraConfig.get().runtime.choices
    params = {k: v for k, v in flatten(cfg).items() if not k.endswith("_partial_")}
    return params | {
        "model": choices.get("model"), "optim": choices.get("optim"), "data": choices.get("data"),
        "parameter_count": parameter_count(job.model), "input_size": job.model.input_size,
        "device_used": str(job.device), "torch_version": torch.__version__,
        "train_size": len(job.data.train), "val_size": len(job.data.val) if job.data.val else 0,
        "test_size": len(job.data.test),
    }


def progress(cfg: DictConfig, name: str):
    """Per-epoch reporting: a bar on a terminal, one plain line per epoch otherwise."""
    epochs, mode = cfg.trainer.epochs, cfg.trainer.progress
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        bar = tqdm(total=epochs, desc=name, unit="epoch", leave=True)

        def report(row):
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}", refresh=False)
            bar.update()

        return report, bar.close

    def line(row):
        log.info(
            "%s epoch %d/%d: train_loss %.4f train_acc %.4f val_loss %.4f val_acc %.4f %.0f samples/s",
            name, row["epoch"], epochs, row["train_loss"], row["train_acc"], row["val_loss"], row["val_acc"],
            row["samples_per_second"],
        )

    return line, lambda: None


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def report_test_set(job: Job, out: Path, name: str) -> tuple[float, float]:
    """Test loss and accuracy, from the same pass that writes per-sample predictions with class
    names and the confusion matrix (CSV and PNG)."""
    logits = predict(job.model, job.data.test)
    probs = logits.softmax(1)
    confidence, predicted = probs.max(1)
    labels, classes = job.data.test.labels, job.data.classes
    n = len(classes)
    counts = torch.bincount(labels * n + predicted, minlength=n * n).reshape(n, n).cpu()
    matrix = pd.DataFrame(counts.numpy(), index=classes, columns=classes)
    matrix.to_csv(out / "confusion_matrix.csv", index_label="true \\ predicted")
    plots.confusion_matrix(matrix, out / "confusion_matrix.png", title=f"{name}: test set")
    pd.DataFrame({
        "index": range(len(labels)),
        "label": labels.cpu().numpy(),
        "label_name": [classes[i] for i in labels.tolist()],
        "predicted": predicted.cpu().numpy(),
        "predicted_name": [classes[i] for i in predicted.tolist()],
        "confidence": confidence.cpu().numpy(),
    }).to_csv(out / "predictions.csv", index=False)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return loss.item(), (counts.diagonal().sum() / len(labels)).item()


def train(cfg: DictConfig, job: Job, run: RunLog, name: str, out: Path) -> dict:
    """Fit, evaluate the best and the last model on the test set, and log it all to run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (out / "layers.txt").write_text(layer_table(job.model) + "\n")

    def on_epoch(row):
        run.metrics({k: row[k] for k in EPOCH_METRICS}, step=row["epoch"])
        report(row)

    report, close = progress(cfg, name)
    try:
        result = fit(job.model, job.optimizer, job.data, cfg.trainer.epochs, cfg.trainer.batch_size,
                     seed=cfg.seed, on_epoch=on_epoch, compile=cfg.trainer.compile)
    finally:
        close()
    history = pd.DataFrame(result.history)
    history.to_csv(out / "history.csv", index=False)
    plots.learning_curves(history, out / "learning_curves.png", title=name)
    train_seconds = float(history["epoch_seconds"].sum())
    if result.diverged_epoch is not None:  # no test metrics: a diverged model's accuracy means nothing
        run.metrics({"train_seconds": train_seconds}, step=len(history))  # the time it did spend training
        run.artifacts(out)
        return {"diverged_epoch": result.diverged_epoch, "train_loss": history["train_loss"].iloc[-1]}

    last_loss, last_acc = evaluate(job.model, job.data.test)
    job.model.load_state_dict(result.best_state)
    save_atomic(result.best_state, out / "model_best.pt")
    test_loss, test_acc = report_test_set(job, out, name)

    final = {
        "test_loss": test_loss, "test_acc": test_acc, "last_test_loss": last_loss, "last_test_acc": last_acc,
        "best_val_acc": float(history["val_acc"].max()) if job.data.val else float("nan"),
        "best_epoch": result.best_epoch, "train_seconds": train_seconds,
        "train_samples_per_second": len(job.data.train) * len(history) / train_seconds,
    }
    run.metrics(final, step=len(history))
    run.params({"step_kind": result.step_kind})
    run.artifacts(out)
    log.info("%s: test_acc %.4f (best epoch %d), last test_acc %.4f, %.1f s training",
             name, test_acc, result.best_epoch, last_acc, train_seconds)
    return final


def skip(client, done, name: str, sweep: dict | None) -> float:
    """Count an earlier FINISHED run of this very config instead of training it again."""
    log.info("%s: skipped, already FINISHED as run %s (resume=false reruns it)", name, done.info.run_id)
    if sweep and done.data.tags.get("mlflow.parentRunId") != sweep["run_id"]:
        client.set_tag(sweep["run_id"], f"{REUSED}{done.info.run_id}", name)
    return done.data.metrics.get("best_val_acc", float("nan"))


def record_failure(run: RunLog, err: Exception, out: Path) -> None:
    """Mark run FAILED with the error as tags, and keep the traceback as an artifact."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "error.txt").write_text("".join(traceback.format_exception(err)))
    run.tags({"error.type": type(err).__name__, "error.message": one_line(err)[:5000]})
    run.client.log_artifact(run.run_id, str(out / "error.txt"))
    run.end("FAILED")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    name, tags, sweep = job_identity(cfg)
    tags[CONFIG_HASH] = config_hash(cfg)
    try:
        client, experiment_id = connect(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
        done = finished_run(client, experiment_id, tags[CONFIG_HASH]) if cfg.resume else None
        if done is not None:
            return skip(client, done, name, sweep)
        job = setup(cfg)
    except Exception as err:  # a bad value or missing data: one line, and no run is made
        log.error("%s: %s", name, one_line(err))
        raise JobError(f"{name}: {one_line(err)}") from err
    run = RunLog.create(client, experiment_id, name, tags)
    run.params(run_params(cfg, job))
    out = Path(HydraConfig.get().runtime.output_dir) / "artifacts"
    try:
        final = train(cfg, job, run, name, out)
    except KeyboardInterrupt:
        run.end("KILLED")
        raise
    except Exception as err:
        record_failure(run, err, out)
        log.error("%s failed: %s (traceback in %s)", name, one_line(err), out / "error.txt")
        raise JobError(f"{name}: {one_line(err)}") from err
    if "diverged_epoch" in final:
        message = f"training loss became {final['train_loss']} at epoch {final['diverged_epoch']}; stopped there"
        run.tags({DIVERGED: final["diverged_epoch"], "error.type": "Diverged", "error.message": message})
        run.end("FAILED")
        log.warning("%s diverged: %s", name, message)
        return float("nan")
    run.end("FINISHED")
    return final["best_val_acc"]


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # so SIGTERM ends runs KILLED, as Ctrl-C does


def cli() -> None:
    register_resolvers()
    try:
        check_command(sys.argv[1:])
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    signal.signal(signal.SIGTERM, _terminate)
    main()  # Hydra exits by itself when a job fails
    fast_exit(0)


if __name__ == "__main__":
    # Call the importable module's main, not __main__'s: process launchers (joblib, submitit)
    # pickle the task function, and only a function of an importable module pickles by reference.
    from experiments.run import cli as run_cli

    run_cli()
