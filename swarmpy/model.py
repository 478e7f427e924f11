"""Typed specs and records shared by every part of swarmpy.

Specs (`StackSpec`, `ServiceSpec`, ...) are what a user asked for, after the
Compose loader normalized it. Records (`Node`, `Service`, `Task`) are what the
cluster knows and keeps in Redis. All of them are plain dataclasses that turn
into JSON-ready dicts with `to_dict()` and back with `Cls.from_dict(d)`.

This module imports nothing of swarmpy.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import secrets
import types
import typing
from dataclasses import dataclass, field
from typing import Any


class Serializable:
    """Mixin: dict round trip for nested dataclasses (JSON for HTTP and Redis)."""

    def to_dict(self) -> dict[str, Any]:
        return _encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _decode(cls, data)

    def copy(self, **changes):
        return dataclasses.replace(self, **changes)


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {name: _encode(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _decode(tp, value):
    return _decoder(tp)(value)


def _same(value):
    return value


@functools.cache
def _decoder(tp):
    """A function turning JSON data into `tp`, built once per type from its hints (records are
    decoded by the thousand: walking type hints for every value was most of a `service ls`)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _decoder(args[0]) if len(args) == 1 else _same
        return lambda v: None if v is None else inner(v)
    if origin is list:
        item = _decoder(typing.get_args(tp)[0])
        return _same if item is _same else (lambda v: None if v is None else [item(x) for x in v])
    if origin is dict:
        item = _decoder(typing.get_args(tp)[1])
        return _same if item is _same else (lambda v: None if v is None else {k: item(x) for k, x in v.items()})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: None if v is None else tp(v)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(tp)}

        def decode(v):
            if v is None:
                return None
            return tp(**{k: fields[k](x) for k, x in v.items() if k in fields})
        return decode
    return _same


_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A 25-character random id in base 36, as Swarm's object ids look (128 random bits)."""
    n = int.from_bytes(secrets.token_bytes(16), "big")
    digits = []
    for _ in range(25):
        n, d = divmod(n, 36)
        digits.append(_ID_ALPHABET[d])
    return "".join(digits)


# --------------------------------------------------------------------------
# Specs: what the user asked for (output of swarmpy.compose)
# --------------------------------------------------------------------------


@dataclass
class Port(Serializable):
    target: int
    published: int | None = None  # None: the cluster picks one (30000-32767)
    protocol: str = "tcp"  # tcp | udp
    mode: str = "ingress"  # ingress (through the mesh) | host (the task's node only)


@dataclass
class Mount(Serializable):
    type: str  # bind | volume | tmpfs
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind_propagation: str | None = None
    bind_create_host_path: bool = True
    volume_nocopy: bool = False
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None


@dataclass
class FileReference(Serializable):
    """A secret or config as a service uses it: which one, and where it lands."""

    source: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass
class Healthcheck(Serializable):
    test: list[str] = field(default_factory=list)  # ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
    interval: float | None = None  # seconds
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


@dataclass
class Constraint(Serializable):
    """A placement constraint, `node.labels.zone == b` -> ("node.labels.zone", "==", "b")."""

    field: str
    operator: str  # == | !=
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{self.value}"


@dataclass
class Preference(Serializable):
    """A placement preference; Swarm has one kind: spread over a node attribute."""

    spread: str  # e.g. node.labels.zone


@dataclass
class Platform(Serializable):
    os: str = ""
    architecture: str = ""


@dataclass
class Placement(Serializable):
    constraints: list[Constraint] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)
    max_replicas_per_node: int | None = None
    platforms: list[Platform] = field(default_factory=list)


@dataclass
class ResourceSet(Serializable):
    cpus: float | None = None  # cores, 0.5 = half a core
    memory: int | None = None  # bytes
    pids: int | None = None


@dataclass
class Resources(Serializable):
    limits: ResourceSet = field(default_factory=ResourceSet)
    reservations: ResourceSet = field(default_factory=ResourceSet)


@dataclass
class RestartPolicy(Serializable):
    condition: str = "any"  # none | on-failure | any
    delay: float = 5.0  # seconds
    max_attempts: int = 0  # 0: unbounded
    window: float = 0.0  # seconds; 0: every attempt counts


@dataclass
class UpdateConfig(Serializable):
    parallelism: int = 1  # 0: all at once
    delay: float = 0.0
    failure_action: str = "pause"  # continue | rollback | pause
    monitor: float = 5.0
    max_failure_ratio: float = 0.0
    order: str = "stop-first"  # stop-first | start-first


@dataclass
class DeploySpec(Serializable):
    mode: str = "replicated"  # replicated | global | replicated-job | global-job
    replicas: int = 1  # replicated modes; for replicated-job: total completions
    max_concurrent: int | None = None  # replicated-job only
    placement: Placement = field(default_factory=Placement)
    resources: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    update_config: UpdateConfig = field(default_factory=UpdateConfig)
    rollback_config: UpdateConfig = field(default_factory=UpdateConfig)
    endpoint_mode: str = "vip"  # vip | dnsrr
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Ulimit(Serializable):
    soft: int
    hard: int


@dataclass
class Logging(Serializable):
    driver: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceSpec(Serializable):
    name: str  # the name in the stack file, without the stack prefix
    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # container labels
    ports: list[Port] = field(default_factory=list)
    volumes: list[Mount] = field(default_factory=list)
    secrets: list[FileReference] = field(default_factory=list)
    configs: list[FileReference] = field(default_factory=list)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {aliases: [...]}
    healthcheck: Healthcheck | None = None
    stop_grace_period: float = 10.0
    stop_signal: str | None = None
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    ulimits: dict[str, Ulimit] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    init: bool | None = None
    extra_hosts: list[str] = field(default_factory=list)  # "host:ip"
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opt: list[str] = field(default_factory=list)
    logging: Logging | None = None
    read_only: bool = False
    tty: bool = False
    stdin_open: bool = False
    privileged: bool = False
    isolation: str | None = None
    deploy: DeploySpec = field(default_factory=DeploySpec)


@dataclass
class NetworkSpec(Serializable):
    name: str | None = None  # the name on the engine when it differs from the key
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ipam: dict[str, Any] = field(default_factory=dict)


@dataclass
class VolumeSpec(Serializable):
    name: str | None = None
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ObjectSpec(Serializable):
    """A secret or config declared at the top level of a stack.

    `data` holds the content read from `file` or `environment` at load time, so
    the manager never needs the user's files. It is a secret's plaintext: the
    manager encrypts it before it reaches Redis and never lists it.
    """

    name: str | None = None
    file: str | None = None
    environment: str | None = None
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    template_driver: str | None = None
    data: str | None = None  # base64 of the content


@dataclass
class StackSpec(Serializable):
    name: str | None = None
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = field(default_factory=dict)
    secrets: dict[str, ObjectSpec] = field(default_factory=dict)
    configs: dict[str, ObjectSpec] = field(default_factory=dict)


def scoped_name(stack: str, name: str, declared: dict[str, Any] | None) -> str:
    """A stack's volume, secret or config name on the cluster: `<stack>_<name>`,
    unless it is declared external or with an explicit `name:`."""
    spec = (declared or {}).get(name) or {}
    if spec.get("name"):
        return spec["name"]
    if spec.get("external"):
        return name
    return f"{stack}_{name}"


# --------------------------------------------------------------------------
# Records: what the cluster knows (kept in Redis)
# --------------------------------------------------------------------------


class TaskState(str, enum.Enum):
    """A task's observed state. States only move forward (see `rank`)."""

    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    PREPARING = "preparing"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"
    SHUTDOWN = "shutdown"
    FAILED = "failed"
    REJECTED = "rejected"
    ORPHANED = "orphaned"

    @property
    def rank(self) -> int:
        return _STATE_RANK[self]

    @property
    def terminal(self) -> bool:
        return self.rank >= _STATE_RANK[TaskState.COMPLETE]

    def __str__(self) -> str:
        return self.value


_STATE_RANK = {s: i for i, s in enumerate(TaskState)}
# The terminal states are all final: none may follow another.
for _s in (TaskState.SHUTDOWN, TaskState.FAILED, TaskState.REJECTED, TaskState.ORPHANED):
    _STATE_RANK[_s] = _STATE_RANK[TaskState.COMPLETE]


class DesiredState(str, enum.Enum):
    RUNNING = "running"
    SHUTDOWN = "shutdown"
    COMPLETE = "complete"  # jobs: run once to completion

    def __str__(self) -> str:
        return self.value


class NodeStatus(str, enum.Enum):
    UNKNOWN = "unknown"
    READY = "ready"
    DOWN = "down"
    DISCONNECTED = "disconnected"

    def __str__(self) -> str:
        return self.value


class Availability(str, enum.Enum):
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"

    def __str__(self) -> str:
        return self.value


@dataclass
class Endpoint(Serializable):
    """Where a task's target port answers: the node's address and a host port."""

    target: int
    protocol: str
    address: str
    port: int
    published: int | None = None
    mode: str = "ingress"


@dataclass
class Node(Serializable):
    id: str
    hostname: str
    address: str  # the address other hosts and the mesh reach it at
    role: str = "worker"  # worker | manager
    availability: Availability = Availability.ACTIVE
    status: NodeStatus = NodeStatus.UNKNOWN
    message: str = ""
    ssh_user: str | None = None  # None: the manager's local engine, no SSH
    ssh_port: int = 22
    host_key: str | None = None  # "<type> <base64>", verified on every connection
    labels: dict[str, str] = field(default_factory=dict)
    engine_labels: dict[str, str] = field(default_factory=dict)
    os: str = ""
    architecture: str = ""
    cpus: float = 0.0  # cores
    memory: int = 0  # bytes
    engine_version: str = ""
    docker_host: str | None = None  # unix socket of a node reached without SSH
    machine: str | None = None  # hostname of the machine that socket is on
    lb: bool = False  # runs a load balancer although it is no manager
    manager_addr: str | None = None  # API address of the manager running on it
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    last_seen: float = 0.0


@dataclass
class Service(Serializable):
    id: str
    stack: str
    name: str  # <stack>_<service>
    spec: ServiceSpec
    version: int = 1  # revision of this record: every write checks and bumps it
    spec_version: int = 1  # bumped when the tasks' part of the spec changes; tasks carry it
    previous_spec: ServiceSpec | None = None
    update_state: str | None = None  # updating | paused | completed | rollback_started ...
    update_message: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class Task(Serializable):
    id: str
    service_id: str
    service_name: str
    spec_version: int  # the service's spec_version this task runs
    slot: int | None = None  # replicated services; None for global ones (node-bound)
    node_id: str | None = None
    desired_state: DesiredState = DesiredState.RUNNING
    state: TaskState = TaskState.NEW
    message: str = ""
    error: str = ""
    container_id: str | None = None
    exit_code: int | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    health: str | None = None  # starting | healthy | unhealthy (Docker's words)
    stop_requested_at: float = 0.0  # when the stop signal was sent; SIGKILL follows after the grace period
    not_before: float = 0.0  # restart delay: do not start before this time
    desired_at: float = 0.0  # when the desired state last changed (the mesh drains a task before it stops)
    restart_history: list[float] = field(default_factory=list)  # times of earlier restarts of this slot
    created_at: float = 0.0
    updated_at: float = 0.0  # time of the last observed state change

    @property
    def display_name(self) -> str:
        """Swarm's task name: `web.2` for a slot, `web.<node id>` for a global task."""
        return f"{self.service_name}.{self.slot if self.slot is not None else self.node_id}"

    @property
    def container_name(self) -> str:
        return f"{self.display_name}.{self.id}"
