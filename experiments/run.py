"""python -m experiments.run [-m] model=classic,d2l optim=sgd,adam ...

Each job trains one LeNet variant and tracks it as one MLflow run; a multirun's jobs are the
children of one parent run for the sweep (see experiments.sweep.SweepCallback). The command is a
thin wrapper around `experiments.run_sweep`'s launch: the same checks, record and errors.
"""
from __future__ import annotations

from . import cli

if __name__ == "__main__":  # not in a launcher's job process, which imports this module for `main`
    cli.quiet_start()  # Ctrl-C during the seconds of imports and checks below: one line, no traceback

from .record.session import scope


@cli.one_line_errors
def command(argv: list[str]) -> int:
    """The run command: every job checked, then Hydra's run or sweep; the sweep's record closed however it ends."""
    import signal

    from .task import launch

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # loaded now: quiet_start's "nothing was run" is past
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with scope() as session:
        return launch(argv, session)


if __name__ == "__main__":
    cli.start(command)
