"""How a command starts and ends: its process settings, its signals, and one table of exit codes.

Every command's `main(argv)` returns an exit code, with what went wrong said in one line by
`one_line_errors`; `start(main)` runs it as a process: bad input exits 2, a failure 1, Ctrl-C 130
SIGTERM 143 and SIGHUP (a closed terminal, a dropped ssh session) 129: the shell's 128 + signal.

Two process settings are speed switches that no library should flip behind its caller's back, so
`lenet/` never does; the commands call `tune()` first thing and end with `fast_exit()`. Set
LENET_PROCESS_TUNING=0 to turn both off (e.g. to compare, or under a debugger that wants a normal
interpreter exit). The run command takes Ctrl-C with `quiet_start`, then Ctrl-C, SIGTERM and SIGHUP with
`handle_signals`.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger(__name__)

OK, FAILED, BAD_INPUT = 0, 1, 2  # exit codes; a signal's is 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each ends a sweep the same way: its runs KILLED


def one_line_errors(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    """A command's main(argv) whose errors are one line on stderr and an exit code: BadInput 2, Abort its
    own (1 by default), Ctrl-C while it reads or writes 130, a memory limit 1. Anything else is a bug: its
    traceback helps."""
    from .errors import Abort, BadInput

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> int:
        try:
            return main(argv)
        except BadInput as err:
            say(f"error: {err}")
            return BAD_INPUT
        except Abort as err:
            say(f"error: {err}")
            return err.code
        except KeyboardInterrupt:
            say("interrupted")
            return 128 + signal.SIGINT
        except MemoryError as err:  # a memory cap (ulimit -v, a cgroup) refused an allocation: nothing to debug here
            say(f"error: out of memory{f' ({err})' if str(err) else ''}: this process hit its memory limit; "
                f"raise it (ulimit -v, the job's mem_gb) or lower trainer.batch_size")
            return FAILED

    return wrapped


def say(line: str) -> None:
    """A line on stderr, if there is still a terminal to take it (after SIGHUP its writes fail with EIO)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def start(main: Callable[[list[str]], int]) -> NoReturn:
    """Run a command's main as this process: settings first, its exit code last."""
    tune()
    fast_exit(main(sys.argv[1:]))


def enabled() -> bool:
    return os.environ.get("LENET_PROCESS_TUNING", "1") != "0"


def tune() -> None:
    """The settings a training process wants; safe to call more than once."""
    # MLflow logs a traceback for each database error it then raises (a full disk, a locked store);
    # the commands report the raised error in one line instead.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # The summary reads each run's predictions.csv: one progress bar per file is noise in a log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if enabled():
        keep_freed_memory()


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc keep freed multi-megabyte buffers in the heap for reuse; True if it took.

    A CPU step allocates and frees the same activation buffers (up to ~5 MB each at batch 256)
    every step. Above its mmap threshold, glibc maps fresh zeroed pages for each and unmaps them
    on free, until its dynamic threshold catches up: a fresh process's first epoch on real MNIST
    ran at 12-14k samples/s against 24k with the buffers kept. Process-wide, and never undone:
    a training process wants its heap to stay warm.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl): its allocator, its behaviour
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def fast_exit(code: int = 0) -> NoReturn:
    """End a command whose work is saved without tearing the interpreter down.

    Freeing torch's, MLflow's and pandas' modules object by object took 1-2 s at the end of every
    command (2.1 s after a sweep's summary). What Python's own exit does first still happens, in
    its order: threads are joined with their exit hooks (joblib's worker pool shuts down there),
    then the atexit handlers run (the sweep's close, logging's flush, MLflow's own). Under a
    profiler or tracer, or with tuning off, it exits normally, so `python -m cProfile` can write.
    """
    if not enabled() or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a terminal closed under it (EIO), or a stream already closed
            pass
    os._exit(code)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP, raised where the main thread is, so runs end KILLED on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP


def interrupted() -> bool:
    """Whether Ctrl-C, SIGTERM or SIGHUP stopped this sweep (its runs end KILLED; other early ends are FAILED)."""
    from .record.session import current

    return bool(current().received)


def quiet_start() -> None:
    """Ctrl-C while a command starts (imports and checks take seconds, and nothing has run or been
    written yet) ends it in one line instead of a traceback from whatever was loading; the command
    calls handle_signals before it writes anything."""
    def on_signal(signum, frame):
        sys.stderr.write("interrupted while starting: nothing was run or written\n")
        os._exit(128 + signum)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job of a shell ignores SIGINT: keep it so
        signal.signal(signal.SIGINT, on_signal)


def handle_signals(session=None) -> dict:
    """The first SIGINT, SIGTERM or SIGHUP raises Interrupted, noted on the sweep's session, and again if Python
    dropped it (raised in a finalizer); later ones are noted and ignored. Returns the handlers it replaced, for
    restore_signals (a notebook's kernel gets its own back).
    One the process ignores stays ignored: a shell's background job ignores SIGINT, `nohup` ignores SIGHUP.

    Closing the runs after an interrupt takes a moment (a few store writes); a second Ctrl-C
    pressed during it (people press twice) must not cut that short and leave a run RUNNING.
    """
    from .record.session import current

    session = session or current()

    lost = []  # the stop whose Interrupted Python dropped, until it is raised again

    def on_signal(signum, frame):
        if session.received and not lost:
            log.warning("%s again: still closing the runs, one moment", signal.Signals(signum).name)
            return
        if not lost:
            session.received.append(signum)
        lost.clear()
        raise Interrupted(signum)

    def on_unraisable(unraisable) -> None:
        # The handler ran inside a finalizer or a weakref callback (the garbage collector runs them anywhere, in the
        # middle of training): Python prints what those raise and goes on, and the stop, already noted, would leave
        # this process training on, deaf to the next signal. Sent again from another thread, once this code has
        # returned (sent from here, its handler would run here), it lands where it can raise.
        if not isinstance(unraisable.exc_value, Interrupted):
            return hook(unraisable)
        lost.append(unraisable.exc_value.signum)
        threading.Timer(0.01, send_again, (lost[0],)).start()

    def send_again(signum: int) -> None:
        if signal.getsignal(signum) is on_signal:  # not after the sweep gave the caller's handler back
            signal.pthread_kill(threading.main_thread().ident, signum)

    on_signal.lenet = True  # handling() knows it by this
    if threading.current_thread() is not threading.main_thread():  # only the main thread may take signals
        return {}
    previous = {UNRAISABLE: sys.unraisablehook}
    hook, sys.unraisablehook = sys.unraisablehook, on_unraisable
    for signum in STOPPING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, on_signal)
    return previous


UNRAISABLE = "sys.unraisablehook"  # its key in what handle_signals replaced


def restore_signals(previous: dict) -> None:
    for key, handler in previous.items():
        if key == UNRAISABLE:
            sys.unraisablehook = handler
        else:
            signal.signal(key, handler)


@contextlib.contextmanager
def logging_kept():
    """The caller's logging back after the code inside. Hydra configures the root logger for its run (a console
    handler on the sys.stdout of that moment, a job's log file): left there, a notebook's next cell would log into
    the last job's file, and the next test onto a captured stream that is closed."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def handling() -> bool:
    """Whether this process takes SIGTERM as handle_signals does (a launcher's job process: not yet)."""
    return getattr(signal.getsignal(signal.SIGTERM), "lenet", False)


def signal_name(stop: KeyboardInterrupt) -> str:
    """The signal that stopped this process: SIGTERM, or SIGINT for Ctrl-C (a bare KeyboardInterrupt)."""
    return stop.args[0] if stop.args else "SIGINT"


def quiet_log_failures() -> None:
    """A log file that cannot be written (a full disk, its folder gone) costs one line on stderr and is then
    dropped, instead of logging's traceback for every record that follows."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handleError = functools.partial(drop_log_file, handler)


def drop_log_file(handler: logging.FileHandler, record: logging.LogRecord) -> None:
    from .errors import message

    logging.getLogger().removeHandler(handler)
    err = sys.exc_info()[1]
    reason = (getattr(err, "strerror", None) or message(err)) if err else "unknown error"
    sys.stderr.write(f"warning: the log file {handler.baseFilename} cannot be written ({reason}); logging to the "
                     f"terminal only\n")
