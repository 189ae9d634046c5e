"""lenet-sweeps' harness: the commands (python -m experiments.run, .export, .inspect, .bench) and their Python
entry, `run_sweep` (experiments.api), imported on first use so that `import experiments` costs nothing.

Importing it may set OMP_WAIT_POLICY=PASSIVE (experiments.cores: on a busy machine idle OpenMP threads sleep rather
than take a shared core), which works only before torch is loaded: hence here, first."""
from . import cores

cores.idle_threads_sleep()


def __getattr__(name: str):
    if name in ("run_sweep", "SweepResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
