"""The signals that stop a sweep (experiments.cli.handle_signals): the first raises where the main thread is, wherever
it lands, later ones wait for the runs to close, and the caller's own handling comes back after."""
import os
import signal
import sys
import time

import pytest

from experiments import cli
from experiments.record.session import Session


class FreedAsTheSignalComes:
    """An object whose finalizer is running when the signal's handler runs, as the garbage collector runs finalizers
    and weakref callbacks in the middle of training: Python prints what one raises ("Exception ignored in") and
    goes on (seen in a submitit job: stopped, it trained to its end)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(10000))  # the handler runs in here


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_sweep(capfd):
    session, hook = Session(), sys.unraisablehook
    previous = cli.handle_signals(session)
    try:
        with pytest.raises(cli.Interrupted, match="^SIGTERM$"):
            FreedAsTheSignalComes()  # freed at once
            time.sleep(30)  # the stop, sent again, ends this at once
    finally:
        cli.restore_signals(previous)
    assert session.received == [signal.SIGTERM]
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is previous[signal.SIGTERM] and sys.unraisablehook is hook


def test_a_second_signal_while_the_runs_close_is_noted_and_ignored(caplog):
    session = Session()
    previous = cli.handle_signals(session)
    try:
        with pytest.raises(cli.Interrupted, match="^SIGINT$"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        os.kill(os.getpid(), signal.SIGINT)  # pressed again while the runs close: nothing is raised
        time.sleep(0.05)
    finally:
        cli.restore_signals(previous)
    assert session.received == [signal.SIGINT]
    assert "SIGINT again: still closing the runs, one moment" in caplog.text
