"""What processes tell each other: leases, liveness, load-balancer status, log requests, execs."""

from __future__ import annotations

import json
from typing import Any

from swarmpy.store.base import StoreBase, _dumps

class Coordination(StoreBase):
    """Keys: lease:<name>, alive:<kind>:<name>, lb:status:<id>, lb:metrics:<id>, logs:<request>, exec:<id>[:in|:out]."""

    def append_log_line(self, request_id: str, line: str | None = None, end: str | None = None) -> None:
        """A line of `service logs` (or the end mark of one node's part) for the API to forward."""
        key = self.key("logs", request_id)
        with self.redis.pipeline(transaction=False) as p:
            p.xadd(key, {"end": end} if end else {"line": line or ""}, maxlen=10_000, approximate=True)
            p.expire(key, 300)
            p.execute()

    def read_log_lines(self, request_id: str, after: str, block_ms: int) -> list[tuple[str, dict]]:
        answer = self.redis.xread({self.key("logs", request_id): after}, count=500, block=block_ms)
        return answer[0][1] if answer else []

    def stop_log_request(self, request_id: str) -> None:
        with self.redis.pipeline(transaction=False) as p:
            p.set(self.key("logs", request_id, "stop"), "1", ex=300)
            p.delete(self.key("logs", request_id))
            p.execute()

    def log_request_stopped(self, request_id: str) -> bool:
        return bool(self.redis.exists(self.key("logs", request_id, "stop")))

    # ------------------------------------------------------------------ service exec

    EXEC_TTL = 24 * 3600  # an exec's record and streams outlive no session by more than a day

    def open_exec(self, exec_id: str, record: dict[str, Any]) -> None:
        """An exec's record (whose task, which stack: who may use it)."""
        self.redis.set(self.key("exec", exec_id), json.dumps(record), ex=self.EXEC_TTL)

    def exec_record(self, exec_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.key("exec", exec_id))
        return json.loads(raw) if raw else None

    def append_exec(self, exec_id: str, direction: str, fields: dict[str, str]) -> None:
        """A frame of an exec's output (`out`: data, exit, error) or input (`in`: data, eof, size)."""
        key = self.key("exec", exec_id, direction)
        with self.redis.pipeline(transaction=False) as p:
            p.xadd(key, fields, maxlen=10_000, approximate=True)
            p.expire(key, self.EXEC_TTL)
            p.execute()

    def read_exec(self, exec_id: str, direction: str, after: str, block_ms: int) -> list[tuple[str, dict]]:
        answer = self.redis.xread({self.key("exec", exec_id, direction): after}, count=500, block=block_ms)
        return answer[0][1] if answer else []

    def close_exec(self, exec_id: str) -> None:
        """The client went: the worker ends the exec's session; its streams go."""
        with self.redis.pipeline(transaction=False) as p:
            p.set(self.key("exec", exec_id, "closed"), "1", ex=300)
            p.delete(self.key("exec", exec_id, "out"), self.key("exec", exec_id, "in"))
            p.execute()

    def exec_closed(self, exec_id: str) -> bool:
        return bool(self.redis.exists(self.key("exec", exec_id, "closed")))

    # ------------------------------------------------------------------ leases and liveness

    def acquire_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew a lease (the leader's, a node watcher's). True while we hold it."""
        return bool(self._lease(keys=[self.key("lease", name)], args=[holder, ttl_ms]))

    def release_lease(self, name: str, holder: str) -> None:
        self._release(keys=[self.key("lease", name)], args=[holder])

    def lease_holder(self, name: str) -> str | None:
        return self.redis.get(self.key("lease", name))

    def mark_alive(self, kind: str, name: str, info: dict[str, Any], ttl_s: float) -> None:
        """A process says it is alive (managers, workers, load balancers); gone when it stops saying so."""
        self.redis.set(self.key("alive", kind, name), _dumps(info), px=int(ttl_s * 1000))

    def mark_alive_many(self, kind: str, names: list[str], info: dict[str, Any], ttl_s: float) -> None:
        """`mark_alive` for several names in one round trip (a job process's rq workers)."""
        value, px = _dumps(info), int(ttl_s * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.set(self.key("alive", kind, name), value, px=px)
        pipe.execute()

    def alive(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: json.loads(v) for name, v in self._values_under("alive", kind).items()}

    def is_alive(self, kind: str, name: str) -> bool:
        return bool(self.redis.exists(self.key("alive", kind, name)))

    def forget_alive(self, kind: str, name: str) -> None:
        self.redis.delete(self.key("alive", kind, name))

    # ------------------------------------------------------------------ Sentinels

    def sentinels(self) -> list[str]:
        """The managers' Sentinels ("host:port"), for their quorum."""
        return sorted(self.redis.smembers(self.key("sentinels")))

    def add_sentinels(self, *addresses: str) -> None:
        if addresses:
            self.redis.sadd(self.key("sentinels"), *addresses)

    def remove_sentinel(self, address: str) -> None:
        self.redis.srem(self.key("sentinels"), address)

    # ------------------------------------------------------------------ load balancers

    def put_lb_status(self, lb_id: str, status: dict[str, Any], ttl_s: float = 10) -> None:
        self.redis.set(self.key("lb", "status", lb_id), _dumps(status), px=int(ttl_s * 1000))

    def put_lb_metrics(self, lb_id: str, text: str, ttl_s: float) -> None:
        """A load balancer's figures (Prometheus text), from a host with no manager to ask it."""
        self.redis.set(self.key("lb", "metrics", lb_id), text, px=int(ttl_s * 1000))

    def forget_lb(self, lb_id: str) -> None:
        """A load balancer that stops: its status and figures go with it."""
        self.redis.delete(self.key("lb", "status", lb_id), self.key("lb", "metrics", lb_id))

    def pushed_lb_metrics(self) -> list[str]:
        return list(self._values_under("lb", "metrics").values())

    def lb_statuses(self) -> dict[str, dict[str, Any]]:
        return {lb_id: json.loads(v) for lb_id, v in self._values_under("lb", "status").items()}
