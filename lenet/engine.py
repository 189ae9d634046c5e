"""Training engine: the whole dataset lives on the device, one host sync per epoch.

LeNet is tiny (about 0.42 M multiply-adds per image forward), so a usual PyTorch loop is bound by
per-sample transforms, per-step host syncs and kernel launches, not arithmetic. Here the data is
one pre-transformed tensor on the device, batches are gathered by an on-device permutation, loss
and accuracy accumulate on the device, and on CUDA the train step is replayed as a CUDA graph.
"""
from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Data, Split
from .fast_cpu import fast_cpu_layers
from .model import choose

log = logging.getLogger(__name__)

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds", "samples_per_second")
COMPILE = ("auto", "cuda_graph", "torch_compile", "off")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict of EPOCH_METRICS (+ "epoch") per epoch
    best_state: dict | None = None  # weights of the best epoch by validation accuracy (last if no val)
    best_epoch: int = 0
    step_kind: str = "eager"  # how the train step ran: eager, cuda_graph or torch_compile
    diverged_epoch: int | None = None  # the epoch whose training loss was nan or inf; training stopped there
    samples_per_epoch: int = 0  # training samples each epoch saw (fewer than the split's with limit_batches)


def make_optimizer(make: Callable[..., torch.optim.Optimizer], params, device: torch.device) -> torch.optim.Optimizer:
    """make(params), with torch's fused CPU kernel when the optimizer has one and make chose no implementation.

    On a CPU torch's default is a Python loop over the parameter tensors: Adam's step over
    LeNet's 10 tensors took 204 us there, 64 us fused (2% of a classic step at batch 128).
    On CUDA torch's default (foreach) stays, as the CUDA graph step was measured with it.
    """
    chosen = getattr(make, "keywords", {}) or {}
    takes_fused = "fused" in inspect.signature(getattr(make, "func", make)).parameters
    if device.type == "cpu" and takes_fused and not {"fused", "foreach"} & chosen.keys():
        return make(params, fused=True)  # all of torch's that take fused= have a CPU kernel: Adam(W), SGD, Adagrad
    return make(params)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available; use device=auto or cpu")
    try:
        return torch.device(device)
    except RuntimeError:  # torch's own message lists every device type it knows, most not for this engine
        raise ValueError(f"unknown device {device!r}; choose one of: auto, cpu, cuda, cuda:N") from None


class EagerStep:
    """One optimisation step on the samples at idx; adds [loss sum, correct] into totals (no sync)."""

    kind = "eager"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, split: Split):
        self.model, self.optimizer, self.split = model, optimizer, split

    def __call__(self, idx: torch.Tensor, totals: torch.Tensor) -> None:
        x, y = self.split.images[idx], self.split.labels[idx]
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        self.optimizer.step()
        totals += torch.stack([loss.detach() * len(y), (logits.argmax(1) == y).sum()])


class CudaGraphStep(EagerStep):
    """The step for full batches captured once as a CUDA graph and replayed; other sizes run eagerly.

    The first WARMUP full batches run eagerly on a side stream (as PyTorch's whole-network capture
    recipe asks; they are real training steps), which also creates the optimizer's state before
    capture. Replaying costs one index copy and one launch per step instead of ~150 kernel launches.
    """

    kind = "cuda_graph"
    WARMUP = 3

    def __init__(self, model, optimizer, split, batch_size: int):
        super().__init__(model, optimizer, split)
        for group in optimizer.param_groups:
            if "capturable" in group:  # Adam & co. keep their step count on the device, as a graph needs
                group["capturable"] = True
        self.batch_size = batch_size
        self.static_idx = torch.zeros(batch_size, dtype=torch.long, device=split.labels.device)
        self.static_totals = torch.zeros(2, device=split.labels.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm = 0

    def __call__(self, idx, totals) -> None:
        if len(idx) != self.batch_size:
            return super().__call__(idx, totals)
        if self.graph is None and self.warm < self.WARMUP:
            self.warm += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                super().__call__(idx, totals)
            torch.cuda.current_stream().wait_stream(side)
            return
        if self.graph is None:
            self.capture()
        self.static_idx.copy_(idx)
        self.static_totals.zero_()
        self.graph.replay()
        totals += self.static_totals

    def capture(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            super().__call__(self.static_idx, self.static_totals)


class CompiledStep(EagerStep):
    """The eager step around torch.compile(model); falls back to eager if compiling fails."""

    kind = "torch_compile"

    def __init__(self, model, optimizer, split):
        super().__init__(torch.compile(model), optimizer, split)
        self.eager_model = model

    def __call__(self, idx, totals) -> None:
        try:
            super().__call__(idx, totals)
        except Exception as err:  # no C++ compiler, unsupported platform...: train on, uncompiled
            if self.model is self.eager_model:
                raise
            log.warning("torch.compile failed (%s); training eagerly", " ".join(str(err).split())[:200])
            self.model, self.kind = self.eager_model, "eager"
            super().__call__(idx, totals)


def make_step(model, optimizer, split: Split, batch_size: int, compile: str = "auto") -> EagerStep:
    """The fastest step that pays here: CUDA graph on CUDA; eager on CPU unless asked to compile."""
    cuda = split.labels.device.type == "cuda"
    if compile == "cuda_graph" and not cuda:
        raise ValueError("compile=cuda_graph needs a CUDA device; use compile=auto, torch_compile or off")
    if compile in ("auto", "cuda_graph") and cuda:
        return CudaGraphStep(model, optimizer, split, batch_size)
    if compile == "torch_compile":
        return CompiledStep(model, optimizer, split)
    return EagerStep(model, optimizer, split)


def train_epoch(step: EagerStep, n: int, batch_size: int, order: torch.Tensor) -> torch.Tensor:
    """One pass over the samples in order; returns [loss sum, correct] on the device."""
    totals = torch.zeros(2, device=order.device)
    for start in range(0, n, batch_size):
        step(order[start : start + batch_size], totals)
    return totals


@torch.no_grad()
def predict(model: nn.Module, split: Split, batch_size: int | None = None) -> torch.Tensor:
    """Logits for every sample of split, in order.

    By default 1024 samples per forward on a GPU (fewer launches) and 256 on a CPU, where a
    batch's activations stay in cache: MNIST's 10k test images took 82 ms against 102 ms at 1024.
    """
    if batch_size is None:
        batch_size = 1024 if split.labels.device.type == "cuda" else 256
    was_training = model.training
    model.eval()
    logits = torch.cat([model(split.images[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    model.train(was_training)
    return logits


def evaluate_on_device(model: nn.Module, split: Split, batch_size: int | None = None) -> torch.Tensor:
    """[mean loss, accuracy] as a device tensor (read it when convenient)."""
    logits = predict(model, split, batch_size)
    loss = nn.functional.cross_entropy(logits, split.labels)
    return torch.stack([loss, (logits.argmax(1) == split.labels).float().mean()])


def evaluate(model: nn.Module, split: Split, batch_size: int | None = None) -> tuple[float, float]:
    loss, acc = evaluate_on_device(model, split, batch_size).tolist()
    return loss, acc


def check_trainer(epochs: int, batch_size: int, compile: str = "auto", limit_batches: int | None = None) -> None:
    choose("compile", compile, COMPILE)
    if epochs < 1:
        raise ValueError(f"epochs {epochs} must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be >= 1")
    if limit_batches is not None and limit_batches < 1:
        raise ValueError(f"limit_batches {limit_batches} must be >= 1 (or null: every batch)")


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Data,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
    compile: str = "auto",
    shuffle: bool = True,
    limit_batches: int | None = None,
) -> FitResult:
    """Train for epochs; data and model must already be on the same device. limit_batches: train on only that
    many batches an epoch (a check of the wiring that needs no learning, as pytorch/examples' --dry-run);
    validation and test stay whole."""
    check_trainer(epochs, batch_size, compile, limit_batches)
    device = data.train.labels.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv kernels once
    with fast_cpu_layers(model) if device.type == "cpu" else nullcontext(model):
        return run_epochs(model, optimizer, data, epochs, batch_size, seed, on_epoch, compile, shuffle, limit_batches)


def run_epochs(model, optimizer, data: Data, epochs: int, batch_size: int, seed: int, on_epoch, compile: str,
               shuffle: bool, limit_batches: int | None = None) -> FitResult:
    """fit's loop, on the model as given (plain, or with fast_cpu's layers)."""
    device = data.train.labels.device
    generator = torch.Generator(device=device).manual_seed(seed)
    step = make_step(model, optimizer, data.train, batch_size, compile)
    result = FitResult()
    best_score = -1.0
    everything = len(data.train)
    n = everything if limit_batches is None else min(everything, limit_batches * batch_size)
    result.samples_per_epoch = n
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(everything, device=device, generator=generator) if shuffle else \
            torch.arange(everything, device=device)
        totals = train_epoch(step, n, batch_size, order[:n])
        no_val = torch.full((2,), float("nan"), device=device)
        val = evaluate_on_device(model, data.val) if data.val is not None else no_val
        loss_sum, correct, val_loss, val_acc = torch.cat([totals, val]).tolist()  # the epoch's one sync
        seconds = time.perf_counter() - start
        row = dict(
            epoch=epoch, train_loss=loss_sum / n, train_acc=correct / n, val_loss=val_loss, val_acc=val_acc,
            epoch_seconds=seconds, samples_per_second=n / seconds,
        )
        result.history.append(row)
        score = val_acc if data.val is not None else epoch  # no validation set: the last epoch is best
        if score > best_score and math.isfinite(loss_sum):
            best_score, result.best_epoch = score, epoch
            result.best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            result.diverged_epoch = epoch
            break
    result.step_kind = step.kind
    return result
