"""python -m experiments.bench --load [N]: a job's training on a quiet machine and beside N CPU-bound processes,
with idle OpenMP threads spinning (LENET_IDLE_THREADS=spin, OpenMP's default), sleeping (LENET_IDLE_THREADS=sleep,
experiments.cores) and as the default chooses (auto), runs alternating. Prints each run's CPU and wall seconds and the
ratios the issue asks for: loaded CPU over quiet CPU (at most 1.5x), and quiet wall against spinning's (at most 5%
slower).

The loaded runs start once the machine's 1-minute load average has reached its cores (about a minute after the busy
processes start): a shared machine is busy before a sweep starts on it, and that average is what auto reads.

Each run is a process of its own (OpenMP reads its wait policy once, when torch loads), timing `fit` alone: the
recipe's epochs on the embedded data, the job's threads as a sweep's job sets them.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from ..cores import usable_cores
from .sweep_timing import fmt_table

POLICIES = {name: {"LENET_IDLE_THREADS": name} for name in ("spin", "sleep", "auto")}
BUSY = "while True: pass"
JOB_S = 600  # a run that takes longer than this has collapsed: say so, do not wait on


def job(overrides: list[str]) -> dict:
    """In this process: train once, as a job would, and return its CPU and wall seconds."""
    import torch
    from hydra.utils import instantiate

    from lenet.data import prepare
    from lenet.engine import fit, make_optimizer

    from .. import cores
    from ..config import compose

    cfg = compose(overrides)
    threads = cores.share_cores(None)
    net = instantiate(cfg.model)
    data = prepare(**(dict(cfg.data) | dict(input_size=net.input_size)))
    optimizer = make_optimizer(instantiate(cfg.optim, _convert_="all"), net.parameters(), torch.device("cpu"))
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fit(net, optimizer, data, cfg.trainer.epochs, cfg.trainer.batch_size, seed=cfg.seed)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return dict(wall=time.perf_counter() - start, threads=threads, policy=os.environ.get("OMP_WAIT_POLICY", "-"),
                cpu=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def run_apart(policy: str, overrides: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LENET_IDLE_THREADS")}
    proc = subprocess.run([sys.executable, "-m", "experiments.benchmarks.load", *overrides],
                          env=env | POLICIES[policy], capture_output=True, text=True, timeout=JOB_S)
    if proc.returncode != 0:
        raise RuntimeError(f"the {policy} job exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(overrides: list[str], busy: int, repeats: int) -> int:
    overrides = ["model=classic", "optim=adam", "trainer.epochs=12", *overrides]
    print(f"{' '.join(overrides)}; {busy} CPU-bound processes beside the loaded runs; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    rows: dict[tuple[str, str], list[dict]] = {}
    for quiet_or_loaded in ("quiet", "loaded"):
        hogs = [subprocess.Popen([sys.executable, "-c", BUSY])
                for _ in range(busy if quiet_or_loaded == "loaded" else 0)]
        try:
            if hogs:
                busy_by_now(usable_cores())
            for _ in range(repeats):
                for policy in POLICIES:  # alternating: a drift in the machine's load touches both alike
                    row = run_apart(policy, overrides)
                    rows.setdefault((quiet_or_loaded, policy), []).append(row)
                    print(f"  {quiet_or_loaded} {policy}: {row['cpu']:.2f} CPU s, {row['wall']:.2f} s wall, "
                          f"{row['threads']} threads, OMP_WAIT_POLICY {row['policy']}", flush=True)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    median = {key: {k: statistics.median(r[k] for r in runs) for k in ("cpu", "wall")} for key, runs in rows.items()}
    table = [[policy, f"{median['quiet', policy]['cpu']:.2f}", f"{median['quiet', policy]['wall']:.2f}",
              f"{median['loaded', policy]['cpu']:.2f}", f"{median['loaded', policy]['wall']:.2f}",
              f"{median['loaded', policy]['cpu'] / median['quiet', policy]['cpu']:.2f}x"] for policy in POLICIES]
    print("\n" + fmt_table(["idle threads", "quiet CPU s", "quiet wall s", "loaded CPU s", "loaded wall s",
                            "loaded / quiet CPU"], table))
    for policy in ("sleep", "auto"):
        solo = [s["wall"] / p["wall"] for s, p in zip(rows["quiet", policy], rows["quiet", "spin"])]
        print(f"{policy}: quiet wall / spinning's, run by run: {', '.join(f'{r:.3f}' for r in solo)} "
              f"(median {statistics.median(solo):.3f}); loaded CPU / spinning's quiet CPU: "
              f"{median['loaded', policy]['cpu'] / median['quiet', 'spin']['cpu']:.2f}x")
    return 0


def busy_by_now(cores: int, patience_s: float = 180) -> None:
    """Wait until the 1-minute load average reaches cores (what auto reads), at most patience_s."""
    start = time.monotonic()
    while os.getloadavg()[0] < cores and time.monotonic() - start < patience_s:
        time.sleep(2)
    print(f"  load average {os.getloadavg()[0]:.2f} after {time.monotonic() - start:.0f} s of busy processes",
          flush=True)


if __name__ == "__main__":
    print(json.dumps(job(sys.argv[1:])))
