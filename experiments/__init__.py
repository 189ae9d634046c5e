"""lenet-sweeps' harness: the commands (python -m experiments.run, .export, .inspect, .bench) and their Python
entry, `run_sweep` (experiments.api), imported on first use so that `import experiments` costs nothing."""


def __getattr__(name: str):
    if name in ("run_sweep", "SweepResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
