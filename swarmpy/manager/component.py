"""The shape every control loop of the leader shares (SwarmKit's habit): a
`run()` loop and `stop()`, a full reconcile when it starts (to catch what it
missed), then work driven by the store's event stream, plus timers for
delayed work, plus a periodic full pass as a safety net.
"""

from __future__ import annotations

import logging
import threading
import time

from swarmpy.store import Store

log = logging.getLogger(__name__)


class Component:
    name = "component"
    full_pass_every = 10.0  # seconds between safety-net full reconciles
    batch_window = 0.0  # seconds to let events gather before handling them

    def __init__(self, store: Store):
        self.store = store
        self._stop = threading.Event()
        self._wake_at: float | None = None
        self._thread: threading.Thread | None = None

    # -- to implement

    def reconcile_all(self) -> None:
        """Look at everything and act (at start, and every `full_pass_every` seconds)."""

    def handle(self, events: list[tuple[str, dict]]) -> None:
        """React to events from the store's stream."""

    def on_timer(self, now: float) -> None:
        """Called when a wake-up asked for with `wake(at)` is due."""

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
        cursor = self.store.last_event_id()
        last_full = 0.0
        while not self._stop.is_set():
            try:
                now = time.time()
                if now - last_full >= self.full_pass_every:
                    last_full = now
                    self.reconcile_all()
                if self._wake_at is not None and self._wake_at <= time.time():
                    self._wake_at = None
                    self.on_timer(time.time())
                block = 500
                if self._wake_at is not None:
                    block = max(1, min(block, int((self._wake_at - time.time()) * 1000)))
                events = self.store.read_events(cursor, block_ms=block)
                if events and self.batch_window:
                    time.sleep(self.batch_window)
                    more = self.store.read_events(events[-1][0], block_ms=None)
                    events += more
                if events:
                    cursor = events[-1][0]
                    if not self._stop.is_set():
                        self.handle(events)
            except Exception:  # a control loop must outlive one bad pass
                log.exception("%s: pass failed; retrying", self.name)
                self._stop.wait(1.0)
