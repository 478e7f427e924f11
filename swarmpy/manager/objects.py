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
from dataclasses import dataclass

from swarmpy.manager.context import ManagerContext
from swarmpy.manager.stacks import StackError
from swarmpy.model import StackSpec, new_id, scoped_name
from swarmpy.model.bodies import StackObjects
from swarmpy.store import Conflict, NotFound


MAX_SECRET = 500 * 1024  # Swarm's limit


def fingerprint(ctx: ManagerContext, data: bytes) -> str:
    """A keyed digest: tells equal contents apart without revealing them."""
    return hmac.new(ctx.token.encode(), data, hashlib.sha256).hexdigest()


def decode(data: str, field: str) -> bytes:
    """Content sent in base64; a StackError naming `field` when it is not."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise StackError([(field, "content must be base64")]) from e


@dataclass
class NewObject:
    """A secret or config checked and ready to write."""

    kind: str
    name: str
    content: bytes
    labels: dict
    stack: str | None = None


def prepare(ctx: ManagerContext, kind: str, name: str, content: bytes, labels: dict, stack: str | None = None,
            path: str = "name") -> NewObject | None:
    """What writing the object would do: None when it exists with the same content (kept as it
    is); a 409 StackError when it exists with other content. Writes nothing."""
    existing = ctx.store.get_object(kind, name)
    if existing is None:
        return NewObject(kind, name, content, labels, stack)
    if existing.get("digest") != fingerprint(ctx, content):
        raise StackError([(path, f"{kind} {name} exists with other content; {kind}s cannot "
                                  "be changed: give the new content a new name")], status=409)
    return None


def write(ctx: ManagerContext, new: NewObject) -> dict:
    meta = {"id": new_id(), "name": new.name, "labels": new.labels, "stack": new.stack,
            "digest": fingerprint(ctx, new.content), "size": len(new.content), "created_at": time.time()}
    data = ctx.vault.encrypt(new.content) if new.kind == "secret" else base64.b64encode(new.content).decode()
    ctx.store.put_object(new.kind, meta, data)
    return meta


def public(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "digest"}


def prepare_stack_objects(ctx: ManagerContext, stack_name: str, spec: StackSpec,
                          contents: StackObjects) -> list[NewObject]:
    """The secrets and configs a stack declares that are to be written, from the content the
    client read from its files; a StackError, with nothing written, when one cannot be."""
    new, problems, conflict = [], [], False
    for kind in ("secret", "config"):
        declared = getattr(spec, kind + "s")
        sent = getattr(contents, kind + "s")
        for key in sent:
            if key not in declared:
                problems.append((f"objects.{kind}s.{key}", f"the stack declares no {kind} {key}"))
        for key, obj in declared.items():
            name, path = scoped_name(stack_name, key, {key: obj.to_dict()}), f"{kind}s.{key}"
            if obj.external or key not in sent:
                if ctx.store.get_object(kind, name) is None:
                    problems.append((path, f"{kind} not found: {name} (declared external)" if obj.external
                                     else f"no content sent for {kind} {key}"))
                continue
            try:
                ready = prepare(ctx, kind, name, decode(sent[key], path), obj.labels, stack_name, path)
            except StackError as e:
                problems += e.problems
                conflict = conflict or e.status == 409
                continue
            if ready:
                new.append(ready)
    if problems:
        raise StackError(problems, status=409 if conflict else 400)
    return new


def write_all(ctx: ManagerContext, new: list[NewObject]) -> None:
    for obj in new:
        write(ctx, obj)


def undo(ctx: ManagerContext, new: list[NewObject]) -> None:
    """Remove what `write_all` wrote (the deploy that wrote it was refused after all)."""
    for obj in new:
        ctx.store.delete_object(obj.kind, obj.name)


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
    """`secret create` / `config create`: refused when one exists with that name."""
    if ctx.store.get_object(kind, name) is not None:
        raise StackError([("name", f"{kind} {name} exists already")], status=409)
    return public(write(ctx, NewObject(kind, name, content, labels)))


def find(ctx: ManagerContext, kind: str, ref: str) -> dict:
    """An object by name, else by id (as `docker secret rm` takes either): an object whose name
    cannot travel in a URL (`..`, empty) made before names were checked is still reached by id."""
    meta = ctx.store.get_object(kind, ref)
    if meta is None:
        meta = next((m for m in ctx.store.list_objects(kind).values() if m.get("id") == ref), None)
    if meta is None:
        raise NotFound(f"{kind} {ref} not found")
    return meta


def inspect(ctx: ManagerContext, kind: str, ref: str) -> dict:
    meta = find(ctx, kind, ref)
    return {**public(meta), "used_by": users(ctx, kind, meta["name"])}


def listing(ctx: ManagerContext, kind: str) -> list[dict]:
    return [public(m) for _, m in sorted(ctx.store.list_objects(kind).items())]


def remove(ctx: ManagerContext, kind: str, ref: str) -> str:
    """Remove a secret or config that no service uses; returns its name."""
    name = find(ctx, kind, ref)["name"]
    in_use = users(ctx, kind, name)
    if in_use:
        raise Conflict(f"{kind} {name} is in use by service {', '.join(in_use)}")
    ctx.store.delete_object(kind, name)
    return name
