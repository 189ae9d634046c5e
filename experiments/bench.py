"""python -m experiments.bench [--baseline d2l|classic] [--seeds N] [--concurrent 1,2,4] [--sweep [--prefill N]] ...

Trains the same recipe two ways in one run, on the same data and device: a faithful replica of a
well-known loop (torchvision DataLoader, transforms per sample, a host sync per step) and this
project's engine. Prints wall seconds, training samples/s and test accuracy for each, and the
engine/baseline ratio. --baseline d2l (the default) replicates d2l's train_ch6 with its recipe
(model=d2l optim=sgd); --baseline classic replicates the classic PyTorch LeNet-5 loop with its
recipe (model=classic optim=adam, Resize(32) and Normalize, batch 128). Overrides are the run
command's, e.g. data=mnist data.root=/data trainer.epochs=10 device=cuda.

With --sweep, it times the run command's whole sweep instead (default: model=classic,d2l
optim=sgd,adam) from command start to its exported summary, on a fresh store, and splits the
wall time into start-up, training, per-job overhead and the summary; --prefill N times it again
on a store already holding N earlier runs. With --load [N], it times a 12-epoch job on a quiet machine and
beside N CPU-bound processes, with idle OpenMP threads spinning, sleeping and as auto chooses
(experiments.benchmarks.load).
With --claims [N], it measures the summary's statistics instead: over N simulated sweeps per design, how often
it states a finding when no recipe differs, and how often it names a planted gap (experiments.benchmarks.claims).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lenet.data import Data, prepare
from lenet.engine import COMPILE, fit, make_optimizer, resolve_device

from . import cli
from .benchmarks.claims import measure as measure_claims
from .benchmarks.load import measure as measure_load
from .benchmarks.replica import BASELINE_NAMES, run_baseline_apart
from .benchmarks.sweep_timing import fmt_table, time_sweep
from .config import compose
from .validate import check_command

# Each replicated loop with the recipe it comes with; the user's overrides go after these.
RECIPES = {
    "d2l": ["model=d2l", "optim=sgd"],
    "classic": ["model=classic", "optim=adam", "data.fit_to_input=resize", "data.normalize=mean_std",
                "trainer.batch_size=128"],
}


def data_kwargs(cfg: DictConfig, input_size: int) -> dict:
    return dict(cfg.data) | dict(input_size=input_size, val_fraction=0.0)


def run_engine(cfg, net, device, compile: str) -> dict:
    start = time.perf_counter()
    data = prepare(**data_kwargs(cfg, net.input_size))
    data = Data(data.train, data.test, data.test, data.classes).to(device)  # test each epoch, as train_ch6
    net.to(device)
    optimizer = make_optimizer(instantiate(cfg.optim, _convert_="all"), net.parameters(), device)
    result = fit(net, optimizer, data, cfg.trainer.epochs, cfg.trainer.batch_size, seed=cfg.seed, compile=compile)
    wall = time.perf_counter() - start
    later = [row["samples_per_second"] for row in result.history[1:]] or [result.history[0]["samples_per_second"]]
    return dict(variant=f"engine ({result.step_kind})", wall=wall, samples=len(data.train) * cfg.trainer.epochs,
                test_acc=result.history[-1]["val_acc"], steady=statistics.median(later))


def concurrent_worker(rank, overrides, compile, barrier, results):
    cfg = compose(overrides)
    torch.manual_seed(cfg.seed + rank)
    net = instantiate(cfg.model)
    barrier.wait()
    results[rank] = run_engine(cfg, net, resolve_device(cfg.device), compile)


def measure_concurrency(overrides: list[str], counts: list[int], compile: str) -> list[dict]:
    """k engine jobs at once, each in its own process: aggregate samples/s against k."""
    ctx = torch.multiprocessing.get_context("spawn")
    rows = []
    for k in counts:
        manager = ctx.Manager()
        results, barrier = manager.dict(), ctx.Barrier(k + 1)
        procs = [ctx.Process(target=concurrent_worker, args=(rank, overrides, compile, barrier, results))
                 for rank in range(k)]
        for p in procs:
            p.start()
        barrier.wait()
        start = time.perf_counter()
        for p in procs:
            p.join()
        wall = time.perf_counter() - start
        samples = sum(r["samples"] for r in results.values())
        rows.append(dict(jobs=k, wall=wall, aggregate=samples / wall,
                         steady_sum=sum(r["steady"] for r in results.values())))
    return rows


def positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


@cli.one_line_errors
def main(argv: list[str]) -> int:
    cli.tune()  # the engine's runs here get the run command's process settings; the replica's process does not
    parser = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--baseline", default="d2l", choices=sorted(RECIPES),
                        help="the loop to replicate, with its recipe: d2l (train_ch6) or classic")
    parser.add_argument("--seeds", type=positive, default=1, help="repeat each variant with seeds 0..N-1")
    parser.add_argument("--no-baseline", action="store_true", help="time the engine only")
    parser.add_argument("--compile", default="auto", choices=COMPILE, help="the engine's step")
    parser.add_argument("--concurrent", type=lambda text: [positive(k) for k in text.split(",")], default=[],
                        help="e.g. 1,2,4: also run that many engine jobs at once")
    parser.add_argument("--sweep", action="store_true",
                        help="time the run command's sweep (default model=classic,d2l optim=sgd,adam) by phase")
    parser.add_argument("--prefill", type=positive, default=0,
                        help="with --sweep: also time it on a store that already holds this many runs")
    parser.add_argument("--warm", action="store_true",
                        help="with --sweep: run it twice in this process (run_sweep) and time the second")
    parser.add_argument("--load", type=positive, nargs="?", const=3, default=None, metavar="N",
                        help="time a 12-epoch job quiet and beside N (3) CPU-bound processes, idle threads spinning "
                             "and sleeping (experiments.cores)")
    parser.add_argument("--repeats", type=positive, default=3, help="with --load: runs of each kind")
    parser.add_argument("--claims", type=positive, nargs="?", const=1000, default=None, metavar="N",
                        help="the summary's false-finding rate and power over N (1000) simulated sweeps per design")
    args, overrides = parser.parse_known_args(argv)
    # The run command's checks come first, before anything is timed: bad input is one line (cli).
    if args.claims is not None:
        return measure_claims(args.claims)
    if args.sweep:
        return time_sweep(overrides, args.prefill, args.warm)
    if args.load is not None:
        check_command(["model=classic", "optim=adam", *overrides])
        return measure_load(overrides, args.load, args.repeats)
    return bench(args, RECIPES[args.baseline] + overrides)


def bench(args: argparse.Namespace, overrides: list[str]) -> int:
    """The replica and the engine, seed by seed, then concurrent engine jobs if asked."""
    (cfg,) = check_command(overrides)
    device = resolve_device(cfg.device)
    prepare(**data_kwargs(cfg, instantiate(cfg.model).input_size))  # fills the cache outside the timings
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; data {cfg.data.name}, "
          f"{' '.join(overrides)}, epochs {cfg.trainer.epochs}, batch {cfg.trainer.batch_size}", flush=True)
    # Each seed: the replica in a process of its own (process.tune set this process's allocator for
    # good), then the engine here, from the same initial weights.
    rows = []
    for seed in range(args.seeds):
        seeded = overrides + [f"seed={seed}"]
        if not args.no_baseline:
            rows.append(dict(run_baseline_apart(seeded, args.baseline), seed=seed))
            print(f"  seed {seed} baseline: {rows[-1]['wall']:.1f} s, test_acc {rows[-1]['test_acc']:.4f}", flush=True)
        cfg = compose(seeded)
        torch.manual_seed(seed)
        rows.append(dict(run_engine(cfg, instantiate(cfg.model), device, args.compile), seed=seed))
        print(f"  seed {seed} engine: {rows[-1]['wall']:.1f} s, test_acc {rows[-1]['test_acc']:.4f}", flush=True)
    print(report(rows, device, cfg.trainer.epochs))
    if args.concurrent:
        conc = measure_concurrency(overrides, args.concurrent, args.compile)
        base = conc[0]["aggregate"] / conc[0]["jobs"]
        print("\nconcurrent engine jobs on one device (wall from a common start to the last job's end):")
        print(fmt_table(["jobs", "wall s", "aggregate samples/s", "x one job", "sum of steady samples/s"],
                        [[r["jobs"], f"{r['wall']:.2f}", f"{r['aggregate']:,.0f}", f"{r['aggregate'] / base:.2f}",
                          f"{r['steady_sum']:,.0f}"] for r in conc]))
    return 0


def report(rows: list[dict], device, epochs: int) -> str:
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    base = next((v for k, v in by_variant.items() if k in BASELINE_NAMES.values()), None)
    base_rate = statistics.mean(r["samples"] / r["wall"] for r in base) if base else None
    table = []
    for variant, runs in by_variant.items():
        rate = statistics.mean(r["samples"] / r["wall"] for r in runs)
        accs = [r["test_acc"] for r in runs]
        acc = f"{statistics.mean(accs):.4f}" + (f" ± {statistics.stdev(accs):.4f}" if len(accs) > 1 else "")
        steady = [r["steady"] for r in runs if r["steady"]]
        table.append([variant, device.type, epochs, len(runs), f"{statistics.mean(r['wall'] for r in runs):.2f}",
                      f"{rate:,.0f}", f"{statistics.mean(steady):,.0f}" if steady else "-", acc,
                      f"{rate / base_rate:.2f}x" if base_rate else "-"])
    headers = ["variant", "device", "epochs", "seeds", "wall s", "train samples/s (wall)",
               "steady samples/s", "test acc", "vs baseline"]
    text = "\n" + fmt_table(headers, table)
    if base:
        base_wall = {r["seed"]: r["wall"] for r in base}
        paired = [f"{base_wall[r['seed']] / r['wall']:.2f}x" for r in rows if r not in base]
        text += f"\nper seed, replica wall / engine wall: {', '.join(paired)}"
    return text


if __name__ == "__main__":
    cli.start(main)
