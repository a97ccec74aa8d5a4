"""Ctrl-C and SIGTERM end a run where the run chooses, not wherever the signal lands.

Python raises KeyboardInterrupt at whatever bytecode the main thread is running. While an executor
waits for its device threads that can be inside `Thread.join` (which then marks a live thread as
stopped), inside a lock or inside rich's console: a CI run once hung there, never printing
"Interrupted". Under `signals_end_the_run()`, a signal that arrives inside `deferred()` only sets
a flag, and the waiting loop calls `check()` at a point where raising is safe; elsewhere it
raises KeyboardInterrupt at once, as before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested = threading.Event()
_deferring = threading.Event()


def _on_signal(signum: int, frame: object) -> None:
    if _deferring.is_set():
        _requested.set()
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_end_the_run() -> Iterator[None]:
    """SIGINT and SIGTERM (a batch scheduler's "time is up") end the run like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    _requested.clear()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        discard()  # a request noted during this run must not end the next one


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, a signal sets a flag for `check()` instead of raising where it lands."""
    _deferring.set()
    try:
        yield
    finally:
        _deferring.clear()


def check() -> None:
    """Raise KeyboardInterrupt here if a signal arrived while deferred."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt


def discard() -> None:
    """Forget a signal noted while deferred: the run it asked to end has already ended."""
    _requested.clear()
