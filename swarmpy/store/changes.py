"""Which service events change something a consumer of the stream acts on.

A service's create and update events carry `behaviour`, a digest of its record
without its revision, its times and the user's labels (`model.behaviour_of`).
A redeploy that changes only a label writes a new version of the service, and
each consumer (every control loop, each worker's network view, each load
balancer) read the service again, its tasks and its addresses, for nothing.
"""

from __future__ import annotations


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
