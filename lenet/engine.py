"""Training engine: the whole dataset lives on the device, one host sync per epoch."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Data, Split

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds", "samples_per_second")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict of EPOCH_METRICS (+ "epoch") per epoch
    best_state: dict | None = None  # weights of the best epoch by validation accuracy (last if no val)
    best_epoch: int = 0


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available; use device=auto or cpu")
    return torch.device(device)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable:
    """One optimisation step; returns (summed loss, correct count) as device tensors, no sync."""
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        return loss.detach() * len(y), (logits.argmax(1) == y).sum()

    return step


def train_epoch(step: Callable, split: Split, batch_size: int, order: torch.Tensor) -> torch.Tensor:
    """Run step over split in the given order; returns [loss_sum, correct] on the device."""
    totals = torch.zeros(2, device=split.labels.device)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        loss_sum, correct = step(split.images[idx], split.labels[idx])
        totals[0] += loss_sum
        totals[1] += correct
    return totals


@torch.no_grad()
def predict(model: nn.Module, split: Split, batch_size: int = 1024) -> torch.Tensor:
    """Logits for every sample of split, in order."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(split.images[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    model.train(was_training)
    return logits


def evaluate_on_device(model: nn.Module, split: Split, batch_size: int = 1024) -> torch.Tensor:
    """[mean loss, accuracy] as a device tensor (read it when convenient)."""
    logits = predict(model, split, batch_size)
    loss = nn.functional.cross_entropy(logits, split.labels)
    return torch.stack([loss, (logits.argmax(1) == split.labels).float().mean()])


def evaluate(model: nn.Module, split: Split, batch_size: int = 1024) -> tuple[float, float]:
    loss, acc = evaluate_on_device(model, split, batch_size).tolist()
    return loss, acc


def check_schedule(epochs: int, batch_size: int) -> None:
    if epochs < 1:
        raise ValueError(f"trainer.epochs {epochs} must be >= 1")
    if batch_size < 1:
        raise ValueError(f"trainer.batch_size {batch_size} must be >= 1")


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Data,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train for epochs; data and model must already be on the same device."""
    check_schedule(epochs, batch_size)
    device = data.train.labels.device
    shuffle = torch.Generator(device=device).manual_seed(seed)
    step = make_step(model, optimizer)
    result = FitResult()
    best_acc = -1.0
    n = len(data.train)
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=shuffle)
        totals = train_epoch(step, data.train, batch_size, order)
        val = evaluate_on_device(model, data.val) if data.val is not None else torch.full((2,), float("nan"), device=device)
        loss_sum, correct, val_loss, val_acc = torch.cat([totals, val]).tolist()  # the epoch's one sync
        seconds = time.perf_counter() - start
        row = dict(
            epoch=epoch, train_loss=loss_sum / n, train_acc=correct / n, val_loss=val_loss, val_acc=val_acc,
            epoch_seconds=seconds, samples_per_second=n / seconds,
        )
        result.history.append(row)
        score = val_acc if data.val is not None else epoch  # no validation set: the last epoch is best
        if score > best_acc:
            best_acc, result.best_epoch = score, epoch
            result.best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(row)
    return result
