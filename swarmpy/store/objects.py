"""Secrets and configs: metadata apart from content, so listings never read content."""

from __future__ import annotations

import json
from typing import Any

from swarmpy.model import scoped_name
from swarmpy.store.base import StoreBase, _dumps

class ObjectRecords(StoreBase):
    """Keys: secrets, secret:data, configs, config:data."""

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """Metadata of secrets or configs (`kind`: secret | config), never their content."""
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key(kind + "s")).items()}

    def get_object(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.key(kind + "s"), name)
        return json.loads(raw) if raw else None

    def put_object(self, kind: str, meta: dict[str, Any], data: str, pipeline=None) -> None:
        """Store a secret or config: metadata, and its content (already encrypted for secrets)."""
        p = pipeline or self.pipeline()
        p.hset(self.key(kind + "s"), meta["name"], _dumps(meta))
        p.hset(self.key(kind, "data"), meta["name"], data)
        self.publish(kind, "create", meta["name"], pipeline=p)
        if pipeline is None:
            p.execute()

    def resolve_object_name(self, kind: str, stack: str, source: str) -> str:
        """The cluster-wide name of a secret or config a stack's service refers to by `source`."""
        return scoped_name(stack, source, (self.get_stack(stack) or {}).get(kind + "s"))

    def object_data(self, kind: str, name: str) -> str | None:
        return self.redis.hget(self.key(kind, "data"), name)

    def delete_object(self, kind: str, name: str) -> None:
        with self.pipeline() as p:
            p.hdel(self.key(kind + "s"), name)
            p.hdel(self.key(kind, "data"), name)
            self.publish(kind, "remove", name, pipeline=p)
            p.execute()
