"""Specs: what the user asked for, as the Compose loader (`swarmpy.compose`) normalized it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarmpy.model.serial import Serializable


@dataclass
class Port(Serializable):
    target: int
    published: int | None = None  # None: the cluster picks one (30000-32767)
    protocol: str = "tcp"  # tcp | udp
    mode: str = "ingress"  # ingress (through the mesh) | host (the task's node only)

    @property
    def through_mesh(self) -> bool:
        """Published on every load balancer's address (an ingress port the cluster has given a number)."""
        return self.mode == "ingress" and bool(self.published)


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
    unless it is declared external or with an explicit `name:`. A service of no stack
    (`service create`, stack "") names cluster-wide objects as they are."""
    if not stack:
        return name
    spec = (declared or {}).get(name) or {}
    if spec.get("name"):
        return spec["name"]
    if spec.get("external"):
        return name
    return f"{stack}_{name}"
