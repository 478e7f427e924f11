"""The store's ground: the connection, key names, the events stream and compare-and-set."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, Self

import redis

DEFAULT_PREFIX = "swarmpy:"
EVENTS_MAXLEN = 100_000
EVENTS_READ = 1000  # events one read of the stream returns at most


class StoreError(Exception):
    """Root of the store's errors."""


class Conflict(StoreError):
    """The record changed since it was read (stale version)."""


class NotFound(StoreError):
    pass


# Compare-and-set of one hash field, with the set indexes and the event that go with
# it, in one step. ARGV[1]: field, ARGV[2]: expected old value ("" = must not exist),
# ARGV[3]: new value ("" = delete), ARGV[4]: n, ARGV[5..4+n]: SADD or SREM of the field
# into KEYS[2+i], then the event fields (k, v, ...).
_CAS_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local n = tonumber(ARGV[4])
for i = 1, n do redis.call(ARGV[4 + i], KEYS[2 + i], ARGV[1]) end
if #ARGV > 4 + n then
  local ev = {}
  for i = 5 + n, #ARGV do ev[#ev + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '%d', '*', unpack(ev))
end
return 1
"""

# Lease: set if absent or already ours, with expiry. Returns 1 when held.
_LEASE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Pop the members of a sorted set whose score is due (<= ARGV[1]).
_POP_DUE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""

_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("<ms>-<seq>") as the pair Redis orders by (as strings, "9-0" > "10-0")."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class StoreBase:
    def __init__(self, connection: redis.Redis, prefix: str = DEFAULT_PREFIX):
        self.redis = connection
        self.prefix = prefix
        self._cas_script = connection.register_script(_CAS_SCRIPT % EVENTS_MAXLEN)
        self._lease = connection.register_script(_LEASE_SCRIPT)
        self._release = connection.register_script(_RELEASE_SCRIPT)
        self._pop_due = connection.register_script(_POP_DUE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, prefix: str = DEFAULT_PREFIX, **kwargs) -> Self:
        kwargs.setdefault("health_check_interval", 10)
        kwargs.setdefault("socket_keepalive", True)
        kwargs.setdefault("retry_on_timeout", True)
        return cls(redis.Redis.from_url(url, decode_responses=True, **kwargs), prefix)

    @classmethod
    def from_config(cls, config, user: str = "manager", prefix: str = DEFAULT_PREFIX, **kwargs) -> Self:
        """The store of a cluster config, logged in as `user` (see `replication.ACL_RULES`): its
        master, through its Sentinels when it has some."""
        from swarmpy.store.replication import client
        return cls(client(config, user, **kwargs), prefix)

    def wait_replicated(self, timeout: float = 2.0, replicas: int | None = None) -> bool:
        """Everything written so far is on a replica too (when there are replicas: `replicas`, if
        the caller's last write counted them, else the master is asked)."""
        from swarmpy.store.replication import wait_replicated
        return wait_replicated(self.redis, self.key("replicated"), timeout, replicas)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def pipeline(self, transaction: bool = True):
        return self.redis.pipeline(transaction=transaction)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # ------------------------------------------------------------------ job queues (rq)

    def queue_name(self, node_id: str) -> str:
        """The rq queue of a node's task actions: one per node, so one slow host delays no other."""
        return f"{self.prefix}node:{node_id}"

    def session_queue(self, node_id: str) -> str:
        """The rq queue of a node's sessions (logs, exec), which last as long as their user
        wants: served by threads of their own, so that no number of them holds up task actions."""
        return f"{self.prefix}sessions:{node_id}"

    @property
    def control_queue(self) -> str:
        """The rq queue of work any worker can do (probing a host before it joins)."""
        return f"{self.prefix}control"

    # ------------------------------------------------------------------ events

    @property
    def events_key(self) -> str:
        return self.key("events")

    def publish(self, kind: str, action: str, id: str, pipeline=None, **fields: Any) -> None:
        """Append an event: `kind` (node, service, task, stack, secret, config), `action`, `id`."""
        entry = {"kind": kind, "action": action, "id": id, "time": f"{time.time():.6f}"}
        entry.update({k: "" if v is None else str(v) for k, v in fields.items()})
        (pipeline or self.redis).xadd(self.events_key, entry, maxlen=EVENTS_MAXLEN, approximate=True)

    def last_event_id(self) -> str:
        last = self.redis.xrevrange(self.events_key, count=1)
        return last[0][0] if last else "0-0"

    def read_events(self, after: str, block_ms: int | None = None, count: int = EVENTS_READ) -> list[tuple[str, dict]]:
        """Events after `after` (an event id); waits up to `block_ms` when there are none."""
        answer = self.redis.xread({self.events_key: after}, count=count, block=block_ms)
        return answer[0][1] if answer else []

    def events_missed(self, after: str) -> str | None:
        """Whether a reader at `after` (the last event id it read) lost events, in one round trip:
        the stream was trimmed past it (its first entry is newer), or went back in time (its last
        entry is older: a failover to a replica that lacked the newest entries; XREAD would skip
        the new ones until their ids pass the cursor). Returns the id to read on from, the
        stream's last (a full pass covers what came before), or None when nothing was lost."""
        with self.redis.pipeline(transaction=False) as p:
            p.xrange(self.events_key, count=1)
            p.xrevrange(self.events_key, count=1)
            first, last = p.execute()
        last_id = last[0][0] if last else "0-0"
        cursor = stream_id(after)
        trimmed = bool(first) and after != "0-0" and stream_id(first[0][0]) > cursor
        if trimmed or stream_id(last_id) < cursor:
            return last_id
        return None

    # ------------------------------------------------------------------ records

    def _cas(self, hash_key: str, field: str, old: str | None, new: str | None,
             event: dict[str, Any] | None = None, indexes: Iterable[tuple[str, str]] = ()) -> bool:
        """Write `new` if the field still holds `old`; with it, add the field to or remove it
        from index sets (`indexes`: ("SADD" | "SREM", set key)) and append the event."""
        indexes = list(indexes)
        args = [field, old or "", new or "", len(indexes), *(op for op, _ in indexes)]
        if event:
            event = {"time": f"{time.time():.6f}", **event}
            for k, v in event.items():
                args += [k, "" if v is None else str(v)]
        return bool(self._cas_script(keys=[hash_key, self.events_key, *(key for _, key in indexes)], args=args))

    def _get_raw(self, hash_key: str, id: str) -> str | None:
        return self.redis.hget(hash_key, id)

    # ------------------------------------------------------------------ cluster

    def cluster_info(self) -> dict[str, str]:
        return self.redis.hgetall(self.key("cluster"))

    def set_cluster_info(self, pipeline=None, **fields: Any) -> None:
        (pipeline or self.redis).hset(self.key("cluster"), mapping={k: str(v) for k, v in fields.items()})

    # ------------------------------------------------------------------ housekeeping

    def _values_under(self, *parts: str) -> dict[str, str]:
        """The string keys under `key(*parts, "")` (those with an expiry, one per process or node):
        the rest of each key's name -> its value, in one scan and one MGET."""
        keys = list(self.redis.scan_iter(self.key(*parts, "*"), count=1000))
        prefix = len(self.key(*parts, ""))
        return {k[prefix:]: v for k, v in zip(keys, self.redis.mget(keys) if keys else []) if v}

    def iter_keys(self) -> Iterator[str]:
        return self.redis.scan_iter(self.prefix + "*", count=1000)

    def flush(self) -> None:
        """Delete every key of this prefix (tests, `swarmpy leave` of an embedded store)."""
        keys = list(self.iter_keys())
        for i in range(0, len(keys), 1000):
            self.redis.delete(*keys[i:i + 1000])
