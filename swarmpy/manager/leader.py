"""Leadership: a lease in Redis (`SET NX PX`, renewed every half second, 3 s to
expire). The manager that holds it runs the control loops; one that loses it
stops them at once. Every manager answers the API either way."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from swarmpy.manager.component import Component
from swarmpy.store import Store

log = logging.getLogger(__name__)

LEASE_MS = 3000
RENEW_EVERY = 0.5


class Leadership(threading.Thread):
    def __init__(self, store: Store, manager_id: str, make_components: Callable[[], list[Component]]):
        super().__init__(name="leadership", daemon=True)
        self.store, self.manager_id, self.make_components = store, manager_id, make_components
        self.components: list[Component] = []
        self.stop_event = threading.Event()
        self.renewed_at = 0.0

    @property
    def leading(self) -> bool:
        return bool(self.components)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                held = self.store.acquire_lease("leader", self.manager_id, LEASE_MS)
                if held:
                    self.renewed_at = time.time()
            except Exception as e:
                log.warning("leadership: cannot reach the store: %s", e)
                # without a renewal the lease runs out: stop before another manager can take it
                held = self.leading and time.time() - self.renewed_at < (LEASE_MS / 1000) - 2 * RENEW_EVERY
            if held and not self.leading:
                log.warning("manager %s: leading", self.manager_id)
                self.components = self.make_components()
                for c in self.components:
                    c.start()
            elif not held and self.leading:
                log.warning("manager %s: lost the lead; stopping the control loops", self.manager_id)
                self.stop_components()
            self.stop_event.wait(RENEW_EVERY)
        self.stop_components()
        try:
            self.store.release_lease("leader", self.manager_id)
        except Exception:
            pass

    def stop_components(self) -> None:
        for c in self.components:
            c.stop(wait=False)
        for c in self.components:
            c.stop(wait=True)
        self.components = []

    def stop(self) -> None:
        self.stop_event.set()
