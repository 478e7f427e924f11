"""What the API accepts, checked once for every client.

The manager runs these checks on everything it is sent, and the CLI on what it
is about to send, so a user of the CLI and a user of the API get the same
answer, naming the same field. Two steps:

- types: a body is parsed against its dataclass (`swarmpy.model.bodies`) with
  pydantic, strictly: `image: 7` or `replicas: true` are refused, unknown keys
  too, and so is JSON nested deeper than the parser allows;
- rules: names (Docker's: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`), ranges, paths, image
  references, references between a stack's parts, and the cluster's limits
  when the caller knows them (the manager does).

A problem is a (path, message) pair; `Invalid` carries them all.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from swarmpy.model.images import check_image
from swarmpy.model.spec import ServiceSpec, StackSpec, scoped_name

T = TypeVar("T")

NAME_RULE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
NAME_LIMITS = {"stack": 63, "service": 63, "network": 63, "node": 63, "secret": 64, "config": 64, "volume": 255}
MODES = ("replicated", "global", "replicated-job", "global-job")
CONSTRAINT_FIELDS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
CONSTRAINT_PREFIXES = ("node.labels.", "engine.labels.")
MOUNT_TYPES = ("bind", "volume", "tmpfs")
# A bind of one of these, or of a folder holding one (`/var` holds the Docker socket), hands the
# host to the task: the engine itself, the cluster's keys (under /var/lib/swarmpy), root's files.
HOST_PATHS = ("/", "/etc", "/root", "/boot", "/proc", "/sys", "/dev", "/var/run/docker.sock", "/run/docker.sock",
              "/var/lib/docker", "/var/lib/swarmpy")
DANGEROUS_CAPABILITIES = ("ALL", "SYS_ADMIN", "CAP_SYS_ADMIN")


class Invalid(ValueError):
    """The request is refused: `problems` are (path, what is wrong), the first one the main one."""

    def __init__(self, problems: list[tuple[str, str]], status: int = 400):
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems, self.status = problems, status

    @property
    def path(self) -> str:
        return self.problems[0][0] if self.problems else "(body)"


# ---------------------------------------------------------------- types


@functools.cache
def adapter(kind: type):
    from pydantic import TypeAdapter  # imported when a body is first checked: the CLI starts faster
    return TypeAdapter(kind)


def parse(kind: type[T], raw: bytes | str, strip: str | None = None) -> T:
    """A body (JSON text) as `kind`; Invalid naming each field of the wrong type. `strip`: a
    leading path part to leave out of the paths (a stack's fields are named from the stack)."""
    from pydantic import ValidationError
    try:
        return adapter(kind).validate_json(raw)
    except ValidationError as e:
        raise Invalid([_problem(error, strip) for error in e.errors(include_url=False)]) from None


def _problem(error: dict, strip: str | None) -> tuple[str, str]:
    loc = [str(part) for part in error["loc"]]
    if strip and loc[:1] == [strip] and len(loc) > 1:
        loc = loc[1:]
    path = ".".join(loc) or "(body)"
    kind = error["type"]
    if kind == "json_invalid":
        return "(body)", f"not valid JSON: {error['ctx'].get('error', 'invalid')}" if error.get("ctx") else \
            "not valid JSON"
    if kind == "unexpected_keyword_argument" or kind == "extra_forbidden":
        return path, "unknown key"
    if kind == "missing" or kind == "missing_argument":
        return path, "is required"
    got = _json_type(error.get("input"))
    return path, f"{error['msg'].replace('Input should be', 'must be')} (got {got})"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------- rules


def name_problem(kind: str, name: str) -> str | None:
    """What is wrong with an object's name, or None."""
    limit = NAME_LIMITS[kind]
    if not NAME_RULE.match(name):
        return (f"invalid {kind} name {_shown(name)}: it must start with a letter or digit and hold only "
                "letters, digits, '_', '.' and '-'")
    if len(name) > limit:
        return f"invalid {kind} name: {len(name)} characters, at most {limit}"
    return None


def check_name(kind: str, name: str, path: str = "name") -> None:
    problem = name_problem(kind, name)
    if problem:
        raise Invalid([(path, problem)])


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def dangerous_options(svc: ServiceSpec) -> list[tuple[str, str]]:
    """What in a service gives its tasks the host: (path, what), for the policy and for inspect."""
    found = []
    if svc.privileged:
        found.append(("privileged", "privileged: true"))
    for i, cap in enumerate(svc.cap_add):
        if cap.upper() in DANGEROUS_CAPABILITIES:
            found.append((f"cap_add.{i}", f"cap_add: {cap}"))
    for i, m in enumerate(svc.volumes):
        source = (m.source or "").rstrip("/") or "/"
        if m.type == "bind" and source.startswith("/") and any(
                path == source or path.startswith(source.rstrip("/") + "/") for path in HOST_PATHS):
            found.append((f"volumes.{i}.source", f"a bind of the host's {source}"))
    return found


def stack_problems(stack_name: str, stack: StackSpec, max_replicas: int | None = None,
                   reserved_ports: dict[tuple[int, str], str] | None = None,
                   allow_privileged: bool = True) -> list[tuple[str, str]]:
    """Every rule a stack breaks. `max_replicas`, `reserved_ports` ((port, protocol) -> what uses
    it) and `allow_privileged` are the cluster's: the manager knows them."""
    problems = []
    if not allow_privileged:
        for name, svc in stack.services.items():
            problems += _refused_options(f"services.{name}", svc)
    if problem := name_problem("stack", stack_name):
        problems.append(("(stack name)", problem))
    if not stack.services:
        problems.append(("services", "the stack has no services"))
    for path, text in _strings(stack.to_dict(), ""):
        if "\x00" in text:
            problems.append((path or "(stack)", "must not contain a NUL character"))
    for name, svc in stack.services.items():
        problems += _service_problems(f"services.{name}", f"{stack_name}_{name}", name, svc, stack, max_replicas,
                                      reserved_ports or {})
    for kind in ("networks", "volumes", "secrets", "configs"):
        for key, declared in getattr(stack, kind).items():
            singular = kind[:-1]
            if problem := name_problem(singular, key):
                problems.append((f"{kind}.{key}", problem))
            elif not getattr(declared, "external", False) or getattr(declared, "name", None):
                full = scoped_name(stack_name, key, {key: declared.to_dict()})
                if problem := name_problem(singular, full):
                    problems.append((f"{kind}.{key}.name", problem))
    return problems


def _refused_options(at: str, svc: ServiceSpec) -> list[tuple[str, str]]:
    return [(f"{at}.{path}", f"{what} gives the task this host: the cluster refuses it "
                             "(`swarmpy cluster update --allow-privileged` lets it through)")
            for path, what in dangerous_options(svc)]


def service_problems(svc: ServiceSpec, full_name: str, key: str | None = None, at: str = "spec",
                     max_replicas: int | None = None, reserved_ports: dict[tuple[int, str], str] | None = None,
                     allow_privileged: bool = True) -> list[tuple[str, str]]:
    """Every rule one service breaks on its own (`service create | update`): a stack's rules but
    those between its parts, whose secrets, configs and networks the manager finds by name.
    `full_name`: the service's name on the cluster; `key`: what `svc.name` must be (its key in
    its stack, or `full_name` for a service of no stack)."""
    problems = [] if allow_privileged else _refused_options(at, svc)
    problems += [(f"{at}.{path}" if path else at, "must not contain a NUL character")
                 for path, text in _strings(svc.to_dict(), "") if "\x00" in text]
    return problems + _service_problems(at, full_name, key or full_name, svc, None, max_replicas,
                                        reserved_ports or {})


def check_service(svc: ServiceSpec, full_name: str, key: str | None = None, **limits) -> None:
    problems = service_problems(svc, full_name, key, **limits)
    if problems:
        raise Invalid(problems)


def _service_problems(at: str, full_name: str, name: str, svc: ServiceSpec, stack: StackSpec | None,
                      max_replicas: int | None, reserved_ports: dict[tuple[int, str], str]) -> list[tuple[str, str]]:
    """`stack` None: a service checked on its own (its secrets and configs are not declared in a file)."""
    problems = []

    def need(ok: bool, path: str, message: str) -> None:
        if not ok:
            problems.append((f"{at}{path}", message))

    if problem := name_problem("service", full_name):
        problems.append((at, problem))
    need(svc.name == name, ".name", f"must be the service's key ({name!r})" if stack is not None
         else f"must be the service's name ({name!r})")
    try:
        check_image(svc.image)
    except ValueError as e:
        problems.append((f"{at}.image", str(e) if svc.image else "a service needs an image"))
    need(svc.working_dir is None or svc.working_dir.startswith("/"), ".working_dir",
         "must be an absolute path in the container")
    need(svc.stop_grace_period >= 0, ".stop_grace_period", "must not be negative")
    for key in svc.environment:
        need(bool(key) and "=" not in key, f".environment.{key}", "not a variable name")
    d = svc.deploy
    need(d.mode in MODES, ".deploy.mode", f"unknown mode {_shown(d.mode)} (one of {', '.join(MODES)})")
    need(d.replicas >= 0, ".deploy.replicas", "must not be negative")
    need(max_replicas is None or d.replicas <= max_replicas, ".deploy.replicas",
         f"{d.replicas} replicas: the cluster allows at most {max_replicas} per service "
         "(`swarmpy cluster update --max-replicas`)")
    need(not d.mode.startswith("global") or d.replicas in (1, None), ".deploy.replicas",
         f"replicas can only be used with replicated mode (mode is {d.mode})")
    need(d.max_concurrent is None or d.max_concurrent >= 0, ".deploy.max_concurrent", "must not be negative")
    need(d.endpoint_mode in ("vip", "dnsrr"), ".deploy.endpoint_mode", "must be vip or dnsrr")
    for i, c in enumerate(d.placement.constraints):
        need(c.field in CONSTRAINT_FIELDS or c.field.startswith(CONSTRAINT_PREFIXES),
             f".deploy.placement.constraints.{i}", f"unknown constraint field {_shown(c.field)}")
        need(c.operator in ("==", "!="), f".deploy.placement.constraints.{i}",
             f"bad operator {_shown(c.operator)} (== or !=)")
    need((d.placement.max_replicas_per_node or 0) >= 0, ".deploy.placement.max_replicas_per_node",
         "must not be negative")
    for kind in ("limits", "reservations"):
        res = getattr(d.resources, kind)
        for key in ("cpus", "memory", "pids"):
            need((getattr(res, key) or 0) >= 0, f".deploy.resources.{kind}.{key}", "must not be negative")
    rp = d.restart_policy
    need(rp.condition in ("none", "on-failure", "any"), ".deploy.restart_policy.condition",
         f"unknown condition {_shown(rp.condition)} (none, on-failure or any)")
    need(rp.delay >= 0 and rp.window >= 0 and rp.max_attempts >= 0, ".deploy.restart_policy",
         "delay, window and max_attempts must not be negative")
    for kind in ("update_config", "rollback_config"):
        uc = getattr(d, kind)
        need(uc.failure_action in ("continue", "rollback", "pause"), f".deploy.{kind}.failure_action",
             "must be continue, rollback or pause")
        need(uc.order in ("stop-first", "start-first"), f".deploy.{kind}.order", "must be stop-first or start-first")
        need(uc.parallelism >= 0 and uc.delay >= 0 and uc.monitor >= 0, f".deploy.{kind}",
             "parallelism, delay and monitor must not be negative")
        need(0 <= uc.max_failure_ratio <= 1, f".deploy.{kind}.max_failure_ratio", "must be between 0 and 1")
    for i, p in enumerate(svc.ports):
        need(1 <= p.target <= 65535 and (p.published is None or 1 <= p.published <= 65535), f".ports.{i}",
             "ports must be between 1 and 65535")
        need(p.protocol in ("tcp", "udp"), f".ports.{i}.protocol", f"unknown protocol {_shown(p.protocol)}")
        need(p.mode in ("ingress", "host"), f".ports.{i}.mode", f"unknown mode {_shown(p.mode)} (ingress or host)")
        user = reserved_ports.get((p.published, p.protocol)) if p.published else None
        need(user is None, f".ports.{i}.published",
             f"port {p.published}/{p.protocol} is the cluster's own ({user}): publish another")
    for i, m in enumerate(svc.volumes):
        need(m.type in MOUNT_TYPES, f".volumes.{i}.type", f"unknown mount type {_shown(m.type)}")
        need(m.target.startswith("/"), f".volumes.{i}.target", "must be an absolute path in the container")
        need(m.type != "bind" or (m.source or "").startswith("/"), f".volumes.{i}.source",
             "a bind mount's source must be an absolute path on the host")
    hc = svc.healthcheck
    if hc is not None:
        need(not hc.test or hc.test[0] in ("CMD", "CMD-SHELL", "NONE"), ".healthcheck.test",
             "must start with CMD, CMD-SHELL or NONE")
        need(all((v or 0) >= 0 for v in (hc.interval, hc.timeout, hc.retries, hc.start_period, hc.start_interval)),
             ".healthcheck", "durations and retries must not be negative")
    for kind, refs in (("secrets", svc.secrets), ("configs", svc.configs)):
        for i, ref in enumerate(refs):
            need(stack is None or ref.source in getattr(stack, kind), f".{kind}.{i}",
                 f"{kind[:-1]} {_shown(ref.source)} is not declared in the stack")
            need(bool(ref.target), f".{kind}.{i}.target", "must not be empty")
            need(0 <= ref.mode <= 0o777, f".{kind}.{i}.mode", "must be a file mode (0 to 0777)")
    for network, options in svc.networks.items():
        aliases = (options or {}).get("aliases") or []
        need(isinstance(aliases, list) and all(isinstance(a, str) and a for a in aliases),
             f".networks.{network}.aliases", "must be a list of names")
    return problems


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, path)
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}.{i}" if path else str(i))


def check_stack(stack_name: str, stack: StackSpec, **limits) -> None:
    problems = stack_problems(stack_name, stack, **limits)
    if problems:
        raise Invalid(problems)


# ---------------------------------------------------------------- service exec

MAX_EXEC_INPUT = 1024 * 1024  # bytes of stdin in one frame
TERMINAL_SIZE = (1, 10_000)  # columns and rows a TTY may have


def _terminal_problems(width: int | None, height: int | None) -> list[tuple[str, str]]:
    low, high = TERMINAL_SIZE
    return [(name, f"must be from {low} to {high}") for name, v in (("width", width), ("height", height))
            if v is not None and not low <= v <= high] + \
        ([("width", "width and height go together")] if (width is None) != (height is None) else [])


def check_exec(body) -> None:
    """`ExecStart`: a command of one or more words, none with a NUL (no process could get it)."""
    problems = [] if body.cmd and body.cmd[0] else [("cmd", "the command must not be empty")]
    problems += [(f"cmd.{i}", "must not contain a NUL character") for i, word in enumerate(body.cmd) if "\x00" in word]
    if body.slot is not None and body.slot < 1:
        problems.append(("slot", "must be 1 or more"))
    problems += _terminal_problems(body.width, body.height)
    if problems:
        raise Invalid(problems)


def check_exec_input(body) -> None:
    """`ExecInput`: base64 data of a bounded size, a whole terminal size."""
    problems = _terminal_problems(body.width, body.height)
    try:
        data = base64.b64decode(body.data, validate=True)
    except (binascii.Error, ValueError):
        data = b""
        problems.append(("data", "must be base64"))
    if len(data) > MAX_EXEC_INPUT:
        problems.append(("data", f"at most {MAX_EXEC_INPUT // 1024} KiB at once"))
    if problems:
        raise Invalid(problems)
