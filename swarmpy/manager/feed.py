"""One reader of the store's event stream for all the control loops of a process.

Each loop used to XREAD the stream itself: every event was read, sent and parsed
five times (the orchestrator, scheduler, dispatcher, allocator, node monitor), and
those reads were two fifths of the loops' CPU for each deploy call. The feed reads
each event once and keeps the last KEEP of them; a loop reads from it what comes
after its cursor, and waits on it as it waited on XREAD (SwarmKit's loops share
one watch queue the same way).

The feed only saves reads, it decides nothing: a loop whose cursor is older than
what the feed holds (it fell KEEP events behind, or the feed is starting over)
reads the store itself, as before, and each loop still checks on its own that the
stream lost nothing after its cursor (`Store.events_missed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from swarmpy.store import ReadPace, SeenBehaviour, Store
from swarmpy.store.base import EVENTS_READ, stream_id

log = logging.getLogger(__name__)

KEEP = 20_000  # events held: a loop further behind reads the store
GAP_CHECK_EVERY = 1.0
# a long run of changes is read at most this often (a chain of a few, each made on the one before,
# is not held up: see ReadPace)
READ_PACE = 0.02


class EventFeed(threading.Thread):
    def __init__(self, store: Store):
        super().__init__(name="event-feed", daemon=True)
        self.store = store
        self.held: deque[tuple[tuple[int, int], str, dict]] = deque()  # (order, id, event), oldest first
        self.base: tuple[int, int] | None = None  # every event after this one is held (None: none is)
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        # events that change nothing a loop acts on are held but wake no loop (a label-only redeploy
        # woke five threads for nothing): each loop reads them at its next wake, within its block
        self.seen = SeenBehaviour()
        self.pace = ReadPace(READ_PACE)

    def run(self) -> None:
        cursor: str | None = None
        checked = 0.0
        while not self.stopping.is_set():
            try:
                if cursor is None:
                    cursor = self.store.last_event_id()
                    self._start_over(cursor)
                if time.monotonic() - checked >= GAP_CHECK_EVERY:
                    checked = time.monotonic()
                    if self.store.events_missed(cursor) is not None:
                        cursor = None  # from the stream's end again; the loops make their own full passes
                        continue
                events = self.pace.read(self.store, cursor, 500, self.stopping)
                if events:
                    cursor = events[-1][0]
                    self._add(events)
            except Exception as e:  # noqa: BLE001 - the store is away: the loops read it themselves meanwhile
                log.warning("event feed: cannot read the store (%s); retrying", e)
                self._start_over(None)
                cursor = None
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()

    def _start_over(self, cursor: str | None) -> None:
        self.seen.forget()
        with self.changed:
            self.held.clear()
            self.base = stream_id(cursor) if cursor is not None else None

    def _add(self, events: list[tuple[str, dict]]) -> None:
        news = [self._wakes(e) for _, e in events]  # every event: each one is remembered
        with self.changed:
            self.held.extend((stream_id(i), i, e) for i, e in events)
            while len(self.held) > KEEP:
                self.base = self.held.popleft()[0]
            if any(news):
                self.changed.notify_all()

    def _wakes(self, event: dict) -> bool:
        """A stack's record written wakes no loop: only the allocator reads it, for a service whose
        networks changed, and that service's own event comes with it (one script writes both)."""
        if self.seen.unchanged(event):
            return False
        return not (event.get("kind") == "stack" and event.get("action") == "update")

    def read_events(self, after: str, block_ms: int | None = None, count: int = EVENTS_READ) -> list[tuple[str, dict]]:
        """As `Store.read_events`: the events after `after`, waiting up to `block_ms` for some."""
        position = stream_id(after)
        deadline = time.monotonic() + (block_ms or 0) / 1000
        with self.changed:
            while self.base is not None and position >= self.base:
                newer = self._after(position, count)
                left = deadline - time.monotonic()
                if newer or block_ms is None or left <= 0:
                    return newer
                self.changed.wait(left)
        return self.store.read_events(after, block_ms=block_ms, count=count)

    def _after(self, position: tuple[int, int], count: int) -> list[tuple[str, dict]]:
        """The held events after `position`, oldest first (a loop is near the end: looked for from there)."""
        found = []
        for order, entry_id, event in reversed(self.held):
            if order <= position:
                break
            found.append((entry_id, event))
        found.reverse()
        return found[:count]
