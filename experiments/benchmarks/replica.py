"""The replicated loops, each run in a process of its own that imports what their readers' scripts do.

The bench (experiments.bench) times d2l's train_ch6 or the classic LeNet-5 loop here, in a fresh
spawned process per seed: no allocator settings, threads or imports left by the engine, and no
MLflow or pandas loaded that a reader's script would not load.
"""
from __future__ import annotations

import multiprocessing
import time
import warnings

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lenet.data import TORCHVISION_DATASETS, dataset_class, load_raw
from lenet.engine import resolve_device
from lenet.reference import PilImages, classic_loader, loader, per_sample_transform, train_ch6, train_classic

from ..config import compose

BASELINE_NAMES = {"d2l": "d2l train_ch6 replica", "classic": "classic loop replica"}


def baseline_datasets(cfg: DictConfig, input_size: int):
    """Per-sample datasets as d2l builds them: torchvision's own classes where the data has one."""
    d = cfg.data
    transform = per_sample_transform(input_size, d.fit_to_input, d.normalize, d.mean, d.std)
    if d.name in TORCHVISION_DATASETS:
        cls = dataset_class(d.name)
        return [cls(root=d.root, train=train, transform=transform, download=d.download) for train in (True, False)]
    raw = load_raw(d.name, d.root, d.download)
    return [PilImages(raw.train_images, raw.train_labels, transform),
            PilImages(raw.test_images, raw.test_labels, transform)]


def run_baseline(cfg, net, device, loop: str) -> dict:
    train_set, test_set = baseline_datasets(cfg, net.input_size)
    batch, epochs = cfg.trainer.batch_size, cfg.trainer.epochs
    start = time.perf_counter()
    optimizer = instantiate(cfg.optim, _convert_="all")(net.parameters())
    if loop == "d2l":
        train_iter, test_iter = loader(train_set, batch), loader(test_set, batch, shuffle=False)
        history = train_ch6(net, train_iter, test_iter, epochs, optimizer, device, init_weights=False)
    else:
        train_iter, test_iter = classic_loader(train_set, batch), classic_loader(test_set, batch, shuffle=False)
        history = train_classic(net, train_iter, test_iter, epochs, optimizer, device)
    wall = time.perf_counter() - start
    return dict(variant=BASELINE_NAMES[loop], wall=wall, samples=len(train_set) * epochs,
                test_acc=history[-1]["test_acc"], steady=None)


def baseline_worker(overrides: list[str], loop: str, reply) -> None:
    """The replica in a fresh process, as d2l's readers run it: no state left by the engine."""
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 4 workers > 2 cores, as d2l has it
    # A spawned process inherits "spawn" as its start method; d2l's DataLoader workers get the
    # platform's default (fork on Linux), as in a reader's own process.
    multiprocessing.set_start_method(None, force=True)
    cfg = compose(overrides)
    torch.manual_seed(cfg.seed)  # the engine's net for this seed starts from these weights too
    net = instantiate(cfg.model)
    device = resolve_device(cfg.device)
    torch.zeros(1, device=device)  # CUDA initialised before the clock starts, as in the engine's process
    reply.send(run_baseline(cfg, net, device, loop))


def run_baseline_apart(overrides: list[str], loop: str) -> dict:
    ctx = torch.multiprocessing.get_context("spawn")
    receive, reply = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=baseline_worker, args=(overrides, loop, reply))
    proc.start()
    reply.close()  # the child holds the sending end now, so its exit ends the pipe
    try:
        result = receive.recv()
    except EOFError:  # it died before replying
        result = None
    proc.join()
    if proc.exitcode != 0 or result is None:
        raise RuntimeError(f"the replica's process exited with {proc.exitcode}")
    return result
