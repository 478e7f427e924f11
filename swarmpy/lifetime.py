"""Child processes die with their parent.

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

_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the parent's own cleanup has to do
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)  # the parent is already gone
