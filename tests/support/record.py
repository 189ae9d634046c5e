"""A sweep's record written straight into a real store, as the harness writes it, at chosen times and states: for
tests of what the answer makes of a record (which run counts, outcomes, the summary) without training."""
from __future__ import annotations

import json
import math

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from experiments import export
from experiments.record.liveness import me


class Record:
    """A sweep's parent run and job runs, written as the harness writes them, at chosen times and states."""

    def __init__(self, runs_dir, swept=("model", "optim")):
        self.runs_dir = runs_dir
        self.client = MlflowClient(f"sqlite:///{runs_dir}/mlflow.db")
        self.experiment_id = self.client.create_experiment("lenet-sweeps",
                                                           artifact_location=(runs_dir / "art").as_uri())
        self.parent = self.client.create_run(self.experiment_id, run_name="sweep", tags={
            "lenet.role": "sweep", "lenet.sweep_id": "s1", "hydra.overrides": "x", "lenet.owner": me(),
            "lenet.swept": json.dumps(list(swept))}).info.run_id
        self.clock = 1_700_000_000_000

    def job(self, model="classic", optim="adam", seed=0, status="FINISHED", acc=0.9, code="c1", tags=None,
            params=None, loss=0.5):
        """A job run of config (model, optim, seed and params), started after every earlier one; loss: its last
        epoch's training loss."""
        identity = f"{model}-{optim}-{seed}-{sorted((params or {}).items())}"
        run = self.created(f"{model}+{optim}", {"lenet.code": code, "lenet.config_hash": identity,
                                                "hydra.job_num": "0", **(tags or {})})
        full = {"model": model, "optim": optim, "seed": seed, "model.activation": "relu", "model.pool": "max",
                "optim.lr": 0.001 if optim == "adam" else 0.9, "data": "mnist5k", "trainer.epochs": 2,
                "trainer.batch_size": 64, "test_size": 1000, "train_size": 3600, "cell": f"{model}+{optim}",
                **(params or {})}
        metrics = [Metric("val_acc", 0.5, self.clock, 1), Metric("train_loss", loss, self.clock, 1)]
        if not math.isnan(acc):
            metrics += [Metric(key, value, self.clock, 0) for key, value in
                        {"test_acc": acc, "best_val_acc": acc, "train_seconds": 1.5, "best_epoch": 2}.items()]
        self.client.log_batch(run, metrics=metrics, params=[Param(k, str(v)) for k, v in full.items()])
        if status != "RUNNING":
            self.client.set_terminated(run, status, end_time=self.clock + 30_000)
        return run

    def stopped_at_start(self, overrides: str, status="KILLED"):
        """A job run stopped between its creation and its params (a signal in that window): it holds only the tags
        it was created with, its launch's overrides among them."""
        run = self.created(overrides.split()[0].split("=")[1], {"lenet.code": "c1", "hydra.job_num": "1",
                                                                "lenet.config_hash": overrides,
                                                                "hydra.overrides": overrides})
        self.client.set_terminated(run, status, end_time=self.clock + 30_000)
        return run

    def created(self, name: str, tags: dict) -> str:
        """A job run of the sweep, started after every earlier one, with these tags beside a job's own."""
        self.clock += 60_000
        return self.client.create_run(self.experiment_id, run_name=name, start_time=self.clock, tags={
            "lenet.role": "job", "mlflow.parentRunId": self.parent, "lenet.sweep_id": "s1", **tags}).info.run_id

    def end(self, status="FINISHED"):
        self.client.set_terminated(self.parent, status)

    def export(self, capsys, *formats):
        out = self.runs_dir / "out"
        code = export.main(["--tracking-uri", f"sqlite:///{self.runs_dir}/mlflow.db", "--out", str(out),
                            "--format", ",".join(formats or ("csv",))])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "Traceback" not in captured.out + captured.err
        return captured.out, out / "s1"

    def brief(self, where: str = "runs/exports/s1/summary.md") -> str:
        """What the sweep's end prints for this record (analysis.brief)."""
        from experiments.analysis.brief import brief
        from experiments.analysis.tables import analyse
        from experiments.record.attempts import sweep_runs

        parent = self.client.get_run(self.parent)
        swept = json.loads(parent.data.tags["lenet.swept"])
        return brief(analyse(self.client, sweep_runs(self.client, self.experiment_id, self.parent), swept), where)
