"""API tokens limited to one stack (a CI pipeline's): kept by the digest of the secret part, so
the store never holds a token a reader could use."""

from __future__ import annotations

import json
from typing import Any

from swarmpy.store.base import StoreBase, _dumps


class TokenRecords(StoreBase):
    """Keys: tokens (id -> record), token:digests (digest -> id)."""

    def put_token(self, record: dict[str, Any], digest: str) -> None:
        p = self.pipeline()
        p.hset(self.key("tokens"), record["id"], _dumps(record))
        p.hset(self.key("token", "digests"), digest, record["id"])
        p.execute()

    def list_tokens(self) -> list[dict[str, Any]]:
        records = [json.loads(v) for v in self.redis.hvals(self.key("tokens"))]
        return sorted(records, key=lambda r: (r["created_at"], r["id"]))

    def token_by_digest(self, digest: str) -> dict[str, Any] | None:
        token_id = self.redis.hget(self.key("token", "digests"), digest)
        raw = self.redis.hget(self.key("tokens"), token_id) if token_id else None
        return json.loads(raw) if raw else None

    def delete_token(self, token_id: str) -> bool:
        record = self.redis.hget(self.key("tokens"), token_id)
        if record is None:
            return False
        p = self.pipeline()
        p.hdel(self.key("tokens"), token_id)
        p.hdel(self.key("token", "digests"), json.loads(record)["digest"])
        p.execute()
        return True
