"""Who may do what through the API.

The cluster token (the state dir's `token`) may do everything. A stack token
(`swarmpy token create --stack NAME`, a CI pipeline's) may deploy, read, scale,
update, roll back, exec in and remove that one stack, and nothing else (no `service create`): every other call gets 403. Such a
deploy may not reach outside its stack either: no external secret, config or
network (they belong to others), and dangerous options only when the token
was made to allow them. A metrics token (`swarmpy token create --metrics`, a
Prometheus's) may read `/metrics` and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from swarmpy.model import StackSpec, new_id
from swarmpy.store import NotFound, Store

PREFIX = "swpt_"  # a stack token says what it is (and is never mistaken for the cluster token)
METRICS = "metrics"  # the scope of a token that may only read /metrics


@dataclass(frozen=True)
class Caller:
    stack: str | None = None  # None: the cluster token, allowed everything (unless a metrics token)
    allow_privileged: bool = False
    token_id: str | None = None
    metrics: bool = False  # a metrics token: /metrics only

    @property
    def admin(self) -> bool:
        return self.stack is None and not self.metrics


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identify(store: Store, cluster_token: str, presented: str) -> Caller | None:
    """The caller a token stands for; None when it stands for nobody."""
    if not presented:
        return None
    if hmac.compare_digest(presented.encode(), cluster_token.encode()):
        return Caller()
    if not presented.startswith(PREFIX):
        return None
    record = store.token_by_digest(digest(presented))
    if record is None:
        return None
    return Caller(stack=record["stack"], allow_privileged=record.get("allow_privileged", False),
                  token_id=record["id"], metrics=record.get("scope") == METRICS)


def create(store: Store, stack: str | None, allow_privileged: bool = False) -> tuple[str, dict]:
    """A new stack token, or a metrics token when `stack` is None: (the token, shown once; its
    record, without it)."""
    token = PREFIX + secrets.token_urlsafe(32)
    record = {"id": new_id()[:12], "stack": stack, "allow_privileged": allow_privileged and stack is not None,
              "created_at": time.time(), "digest": digest(token), "scope": METRICS if stack is None else "stack"}
    store.put_token(record, record["digest"])
    return token, public(record)


def public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "digest"}


# routes a stack token may call: (method, rule) -> how to find the stack the call is about
_OWN_STACK = {
    ("PUT", "/stacks/<name>"), ("POST", "/stacks/<name>/plan"), ("DELETE", "/stacks/<path:name>"), ("GET", "/stacks/<name>/services"),
    ("GET", "/stacks/<name>/tasks"),
}
_OWN_SERVICE = {
    ("GET", "/services/<ref>"), ("GET", "/services/<ref>/tasks"), ("GET", "/services/<ref>/logs"),
    ("PATCH", "/services/<ref>"), ("POST", "/services/<ref>/update"), ("POST", "/services/<ref>/rollback"),
    ("POST", "/services/<ref>/exec"),
}
_OWN_EXEC = {("GET", "/exec/<exec_id>"), ("POST", "/exec/<exec_id>/input")}
_BY_QUERY = {("GET", "/services"), ("GET", "/tasks")}
_ANYONE = {("GET", "/info")}


def refusal(caller: Caller, store: Store, method: str, rule: str, view_args: dict, args: dict) -> str | None:
    """Why `caller` may not make this call (None: it may)."""
    if caller.metrics:
        return None if (method, rule) == ("GET", "/metrics") else "this token may only read /metrics"
    if caller.admin or (method, rule) in _ANYONE:
        return None
    mine = f"this token may only deploy and read stack {caller.stack}"
    if (method, rule) in _OWN_STACK:
        return None if view_args.get("name") == caller.stack else mine
    if (method, rule) in _OWN_SERVICE:
        try:
            stack = store.find_service(view_args.get("ref", "")).stack
        except NotFound:
            return mine  # no telling which names exist outside its stack
        return None if stack == caller.stack else mine
    if (method, rule) in _OWN_EXEC:
        record = store.exec_record(view_args.get("exec_id", ""))
        return None if record is not None and record["stack"] == caller.stack else mine
    if (method, rule) in _BY_QUERY:
        return None if args.get("stack") == caller.stack and not args.get("node") else \
            f"{mine}: ask with ?stack={caller.stack}"
    return mine


def deploy_refusals(caller: Caller, stack_name: str, stack: StackSpec) -> list[tuple[str, str]]:
    """What a stack token's deploy may not use: what belongs to the rest of the cluster (an
    external secret, config, network or volume, or one named outside the stack)."""
    if caller.admin:
        return []
    problems = []
    for kind in ("secrets", "configs", "networks", "volumes"):
        for key, declared in getattr(stack, kind).items():
            if declared.external:
                problems.append((f"{kind}.{key}", f"a stack token cannot use the external {kind[:-1]} "
                                                  f"{declared.name or key}: it belongs to the rest of the cluster"))
            elif declared.name and not declared.name.startswith(f"{stack_name}_"):
                problems.append((f"{kind}.{key}.name", f"a stack token names its {kind} {stack_name}_...: "
                                                       f"{declared.name} is outside the stack"))
    return problems
