"""Child processes die with their parent, and are started again when they die.

A manager starts its load balancer, a worker its job processes. If the parent
is killed (SIGKILL leaves it no time to clean up), its children must not live
on: an orphaned load balancer would keep answering on the published ports
with a stale table. Linux delivers a signal to a child whose parent died
(PR_SET_PDEATHSIG); a child also checks that its parent is still the one that
started it, in case the parent died before the request was made.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

_PR_SET_PDEATHSIG = 1

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STEADY_AFTER = 60.0  # seconds up after which a child's next death is a first one again


def die_with_parent(expected_parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the parent's own cleanup has to do
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)  # the parent is already gone


def stop_child(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL when it has not ended within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def next_backoff(backoff: float, ran_for: float) -> tuple[float, float]:
    """(the pause before a dead child starts again, the pause after that): doubling with each quick
    death, from FIRST_BACKOFF up to MAX_BACKOFF, as systemd's `Restart=always` with a backoff does;
    a child that ran STEADY_AFTER starts over."""
    if ran_for >= STEADY_AFTER:
        backoff = FIRST_BACKOFF
    return backoff, min(backoff * 2, MAX_BACKOFF)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class StopSignals:
    """SIGTERM and SIGINT (or the signals given), noted for the main thread to act on.

    A handler must take no lock. Python runs it in the main thread between two bytecodes, and
    `Event.set()` there deadlocks when the signal lands while the main thread holds that Event's
    own lock, as it does waking from `Event.wait`. A second SIGTERM (a parent's death and a stop,
    say) left a control loops' process hung for good that way."""

    def __init__(self, *signals: int):
        self.received = False
        for sig in signals or (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum, frame) -> None:
        self.received = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout`, less once a signal came; whether one came."""
        deadline = time.monotonic() + timeout
        while not self.received and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
        return self.received
