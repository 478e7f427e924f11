"""Secrets and configs: files given to tasks.

A secret's content is encrypted by the vault before it reaches Redis and
never leaves the manager again except to a worker that starts a task using
it; listings and `inspect` show names, labels and dates only. Like Swarm's,
both are immutable: a stack redeployed with new content under the same name
is refused (give the new content a new name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from swarmpy.manager.context import ManagerContext
from swarmpy.manager.stacks import StackError
from swarmpy.model import StackSpec, new_id, scoped_name
from swarmpy.store import Conflict, NotFound


def fingerprint(ctx: ManagerContext, data: bytes) -> str:
    """A keyed digest: tells equal contents apart without revealing them."""
    return hmac.new(ctx.token.encode(), data, hashlib.sha256).hexdigest()


def decode(data: str, field: str) -> bytes:
    """Content sent in base64; a StackError naming `field` when it is not."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise StackError([(field, "content must be base64")]) from e


def put(ctx: ManagerContext, kind: str, name: str, content: bytes, labels: dict, stack: str | None = None) -> dict:
    """Create a secret or config; an existing one with the same content is kept as it is."""
    digest = fingerprint(ctx, content)
    existing = ctx.store.get_object(kind, name)
    if existing is not None:
        if existing.get("digest") != digest:
            raise StackError([(f"{kind}s.{name}", f"{kind} {name} exists with other content; {kind}s cannot "
                                                  "be changed: give the new content a new name")], status=409)
        return existing
    meta = {"id": new_id(), "name": name, "labels": labels, "stack": stack, "digest": digest,
            "size": len(content), "created_at": time.time()}
    data = ctx.vault.encrypt(content) if kind == "secret" else base64.b64encode(content).decode()
    ctx.store.put_object(kind, meta, data)
    return meta


def public(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "digest"}


def store_stack_objects(ctx: ManagerContext, stack_name: str, spec: StackSpec, contents: dict) -> None:
    """The secrets and configs a stack declares, from the content the client read from its files."""
    for kind in ("secret", "config"):
        declared = getattr(spec, kind + "s")
        sent = contents.get(kind + "s") or {}
        for key, obj in declared.items():
            name = scoped_name(stack_name, key, {key: obj.to_dict()})
            if obj.external:
                if ctx.store.get_object(kind, name) is None:
                    raise StackError([(f"{kind}s.{key}", f"{kind} not found: {name} (declared external)")])
                continue
            if key not in sent:
                if ctx.store.get_object(kind, name) is None:
                    raise StackError([(f"{kind}s.{key}", f"no content sent for {kind} {key}")])
                continue
            put(ctx, kind, name, decode(sent[key], f"{kind}s.{key}"), obj.labels, stack=stack_name)


def remove_stack_objects(ctx: ManagerContext, stack_name: str) -> None:
    for kind in ("secret", "config"):
        for name, meta in ctx.store.list_objects(kind).items():
            if meta.get("stack") == stack_name:
                ctx.store.delete_object(kind, name)


def users(ctx: ManagerContext, kind: str, name: str) -> list[str]:
    out = []
    for service in ctx.store.list_services():
        refs = service.spec.secrets if kind == "secret" else service.spec.configs
        if any(ctx.store.resolve_object_name(kind, service.stack, r.source) == name for r in refs):
            out.append(service.name)
    return out


def create(ctx: ManagerContext, kind: str, name: str, content: bytes, labels: dict) -> dict:
    """`secret create` / `config create`."""
    return public(put(ctx, kind, name, content, labels))


def inspect(ctx: ManagerContext, kind: str, name: str) -> dict:
    meta = ctx.store.get_object(kind, name)
    if meta is None:
        raise NotFound(f"{kind} {name} not found")
    return {**public(meta), "used_by": users(ctx, kind, name)}


def listing(ctx: ManagerContext, kind: str) -> list[dict]:
    return [public(m) for _, m in sorted(ctx.store.list_objects(kind).items())]


def remove(ctx: ManagerContext, kind: str, name: str) -> None:
    """Remove a secret or config that no service uses."""
    if ctx.store.get_object(kind, name) is None:
        raise NotFound(f"{kind} {name} not found")
    in_use = users(ctx, kind, name)
    if in_use:
        raise Conflict(f"{kind} {name} is in use by service {', '.join(in_use)}")
    ctx.store.delete_object(kind, name)
