"""A worker process seen from the manager: start it, send a cell, wait for its row with a timeout.

The manager never imports torch. A worker that dies or hangs costs only the cell in flight; the
caller records it and starts a fresh worker for the rest of the group. Workers die with their
manager (see `sdbench.runner.worker.die_with_parent`), so a killed run leaves no orphans behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from sdbench.cell import Cell, Measure

HELLO_TIMEOUT_S = 600.0  # importing torch + diffusers on a cold disk can take minutes
MIN_HELLO_TIMEOUT_S = 120.0  # even a suite of quick cells gives a worker this long to import


def hello_timeout_s(measure: Measure) -> float:
    """How long a new worker may take to say hello: the suite's cell_timeout_s, within bounds."""
    return min(HELLO_TIMEOUT_S, max(MIN_HELLO_TIMEOUT_S, measure.cell_timeout_s))


MANAGER_PID_ENV = "SDBENCH_MANAGER_PID"  # the worker exits when this process is gone
STDERR_LINES_KEPT = 200  # enough for a faulthandler dump of a few threads


def stderr_summary(lines: list[str], count: int = 5) -> str:
    """What a dead worker's stderr says, on one line.

    A faulthandler dump (the worker enables it) gives the fatal error and the crashing thread's
    innermost frames; otherwise the last few lines (a Python traceback ends with its error).
    """
    fatal = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    if not fatal:
        return " | ".join(line[:300] for line in lines[-count:])
    dump = lines[fatal[-1] :]
    current = next((i for i, line in enumerate(dump) if line.startswith("Current thread")), 0)
    frames = [line.strip() for line in dump[current:] if line.strip().startswith("File ")]
    return " | ".join([dump[0], *frames[: count - 1]])


class WorkerLost(Exception):
    """The worker died or hung; `status` is error or timeout and `reason` says why."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WorkerProcess:
    """One worker. `on_spawn(self)` runs once the process exists, before waiting for its hello,
    so a caller can kill a worker that is still starting (Ctrl-C during torch's import).

    On Linux the worker is killed when the *thread* that started it ends (PR_SET_PDEATHSIG), so
    start it from a thread that outlives it.
    """

    def __init__(
        self,
        device: str,
        env: dict[str, str] | None = None,
        on_spawn: Callable[[WorkerProcess], None] | None = None,
        hello_timeout_s: float = HELLO_TIMEOUT_S,
    ):
        self.device = device
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sdbench.runner.worker", device],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {}), MANAGER_PID_ENV: str(os.getpid())},
            start_new_session=True,  # Ctrl-C reaches the manager, which decides what workers do
        )
        self._buffer = b""
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        if on_spawn is not None:
            on_spawn(self)
        what = "start: no hello from the worker; [measure] cell_timeout_s bounds it, 120-600 s"
        self.hello = self._read_message(hello_timeout_s, what=what)["hello"]

    def _drain_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)

    def request(self, cell: Cell, measure: Measure) -> dict:
        """Send one cell; its measured fields, or WorkerLost."""
        message = json.dumps({"cell": cell.to_dict(), "measure": measure.__dict__}) + "\n"
        try:
            self.process.stdin.write(message.encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._lost("error", "worker exited before the cell started") from None
        return self._read_message(measure.cell_timeout_s, what="cell")["result"]

    def _read_message(self, timeout_s: float, what: str) -> dict:
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise self._lost(
                        "timeout",
                        f"no answer within {timeout_s:.0f} s ({what}); the worker was killed",
                    )
                if not selector.select(timeout=min(remaining, 1.0)):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise self._lost("error", self._death_reason())
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            self.kill()
            text = line[:200].decode(errors="replace")
            raise self._lost("error", f"worker sent an unreadable line: {text!r}") from None

    def _death_reason(self) -> str:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        self._stderr_thread.join(timeout=2.0)  # it ends at EOF, once the last lines are in
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            cause = f"worker killed by {name}"
        else:
            cause = f"worker exited with code {code}"
        tail = stderr_summary(list(self.stderr_tail))
        return f"{cause}; last stderr: {tail}" if tail else cause

    def _lost(self, status: str, reason: str) -> WorkerLost:
        return WorkerLost(status, reason)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Close stdin so the worker ends after its current cell; kill it if it lingers."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
