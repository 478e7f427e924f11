"""How the consumers of the event stream follow it: which service events change
something they act on, and how often they read it.

A service's create and update events carry `behaviour`, a digest of its record
without its revision, its times and the user's labels (`model.behaviour_of`).
A redeploy that changes only a label writes a new version of the service, and
each consumer (every control loop, each worker's network view, each load
balancer) read the service again, its tasks and its addresses, for nothing.

Each read of the stream costs a consumer about 0.2 ms of CPU (redis-py and TLS)
and the store an answer, and one write woke every consumer at once, on the two
cores the API's answer needed too. A consumer reads a burst of writes in
batches instead (`ReadPace`), as kube-proxy batches its syncs (its
minSyncPeriod) and SwarmKit's scheduler debounces its commits (50 ms).
"""

from __future__ import annotations

import threading
import time

from swarmpy.store.base import EVENTS_READ, StoreBase


class SeenBehaviour:
    """One consumer's memory of the last behaviour each service's events said, in stream order:
    an event that says the same again changes nothing for it. `forget()` whenever the consumer
    may have missed events (its full pass reads everything again)."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def unchanged(self, event: dict) -> bool:
        if event.get("kind") != "service":
            return False
        service_id, action, digest = event.get("id", ""), event.get("action"), event.get("behaviour")
        if action not in ("create", "update") or not digest:  # a removal, a new VIP, an older writer's
            if action != "vip":
                self._last.pop(service_id, None)
            return False
        if self._last.get(service_id) == digest:
            return True
        self._last[service_id] = digest
        return False

    def forget(self) -> None:
        self._last.clear()


class ReadPace:
    """A consumer's pace, a token bucket: after a quiet spell, up to `burst` reads go at once (a
    chain of changes, each made on the one before, as orchestrator, scheduler and dispatcher make
    them, is not held up at each hop); a longer run of them, such as a stream of deploy calls, is
    read at most once per `interval`, what came meanwhile in one batch, acted on once."""

    def __init__(self, interval: float, burst: int = 4) -> None:
        self.interval, self.burst = interval, burst
        self._tokens, self._at = float(burst), time.monotonic()

    def read(self, store: StoreBase, after: str, block_ms: int, stop: threading.Event) -> list[tuple[str, dict]]:
        """The events after `after` (waiting up to `block_ms` for some), read at this pace: when the
        reads have run ahead of it, after a wait for the next one's turn (cut short by `stop`)."""
        self._refill()
        if self._tokens < 1:
            stop.wait((1 - self._tokens) * self.interval)
        events = store.read_events(after, block_ms=block_ms)
        # a read that came back full leaves a backlog: the next goes at once (a reader catching up
        # after a stall is not held to the pace)
        if events and len(events) < EVENTS_READ:
            self._refill()
            self._tokens = max(0.0, self._tokens - 1)
        return events

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) / self.interval)
        self._at = now
