"""The shape every control loop of the leader shares (SwarmKit's habit): a
`run()` loop and `stop()`, a full reconcile when it starts (to catch what it
missed), then work driven by the store's event stream, plus timers for
delayed work. A full pass runs again whenever events may have been missed (a
pass failed, or the stream lost entries the loop had not read), and, as a
last resort, every `full_pass_every` seconds.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from collections.abc import Iterable, Iterator

from swarmpy.store import SeenBehaviour, Store

log = logging.getLogger(__name__)

# Seconds a thread may hold the GIL while another waits (Python's default is 5 ms). The API's and
# the loops' threads give it up at each store round trip and wait to get it back: with 5 ms, another
# thread's long turn made each such wait up to 5 ms (a deploy call's p99; a loop's reaction).
SWITCH_INTERVAL = 0.0005


class Component:
    name = "component"
    full_pass_every = 10.0  # seconds between safety-net full reconciles
    batch_window = 0.0  # seconds to let events gather before handling them
    gap_check_every = 1.0  # seconds between checks that the stream still holds what the loop has not read
    pass_batch = 200  # records a full pass reads at once: no reply so large that it holds up the API's
    feed = None  # an EventFeed the loops of a process share; None: the loop reads the store's stream itself

    def __init__(self, store: Store):
        self.store = store
        self._stop = threading.Event()
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None
        self.seen = SeenBehaviour()  # a service event that changes nothing it acts on is let pass

    # -- to implement

    def reconcile_all(self) -> None:
        """Look at everything and act (at start, when events may have been missed, and every
        `full_pass_every` seconds)."""

    def handle(self, events: list[tuple[str, dict]]) -> None:
        """React to events from the store's stream."""

    def on_timer(self, now: float) -> None:
        """Called when a wake-up asked for with `wake(at)` is due."""

    def on_tick(self, now: float) -> None:
        """Called on every turn of the loop (at least twice a second): cheap periodic checks."""

    def batches(self, ids: Iterable[str]) -> Iterator[list[str]]:
        """`ids` in batches of `pass_batch`, for a full pass."""
        ordered = sorted(ids)
        for start in range(0, len(ordered), self.pass_batch):
            yield ordered[start:start + self.pass_batch]

    # -- the loop

    def wake(self, at: float | None) -> None:
        if at is not None and (self._wake_at is None or at < self._wake_at):
            self._wake_at = at

    def start(self) -> threading.Thread:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        cursor: str | None = None
        next_full = last_gap_check = 0.0
        missed = True  # whatever happened before the loop started
        while not self._stop.is_set():
            try:
                if cursor is None:  # read in the loop: a store away at start must not end the thread
                    cursor = self.store.last_event_id()
                now = time.time()
                if now - last_gap_check >= self.gap_check_every:
                    last_gap_check = now
                    resume = self.store.events_missed(cursor)
                    if resume is not None:
                        log.warning("%s: the event stream lost events after %s; full pass", self.name, cursor)
                        cursor, missed = resume, True
                if missed or now >= next_full:
                    # the loops start together: spread their last-resort passes, which each read the
                    # whole store, so that they do not all land at once
                    next_full = now + self.full_pass_every * random.uniform(0.75, 1.25)
                    self.seen.forget()
                    self.reconcile_all()
                    missed = False
                self.on_tick(now)
                if self._wake_at is not None and self._wake_at <= time.time():
                    self._wake_at = None
                    self.on_timer(time.time())
                block = 500
                if self._wake_at is not None:
                    block = max(1, min(block, int((self._wake_at - time.time()) * 1000)))
                stream = self.feed or self.store
                events = stream.read_events(cursor, block_ms=block)
                if events and self.batch_window:
                    time.sleep(self.batch_window)
                    more = stream.read_events(events[-1][0], block_ms=None)
                    events += more
                if events:
                    cursor = events[-1][0]
                    events = [(i, e) for i, e in events if not self.seen.unchanged(e)]
                    if events and not self._stop.is_set():
                        self.handle(events)
            except Exception:  # a control loop must outlive one bad pass
                log.exception("%s: pass failed; retrying", self.name)
                missed = True  # the events of the failed pass, or those the store lost meanwhile
                self._stop.wait(1.0)
