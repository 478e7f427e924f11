"""Records: what the cluster knows and keeps in Redis (nodes, services, tasks and their states)."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field

from swarmpy.model.serial import Serializable
from swarmpy.model.spec import ServiceSpec


class TaskState(enum.StrEnum):
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


_STATE_RANK = {s: i for i, s in enumerate(TaskState)}
# The terminal states are all final: none may follow another.
for _s in (TaskState.SHUTDOWN, TaskState.FAILED, TaskState.REJECTED, TaskState.ORPHANED):
    _STATE_RANK[_s] = _STATE_RANK[TaskState.COMPLETE]


class DesiredState(enum.StrEnum):
    RUNNING = "running"
    SHUTDOWN = "shutdown"
    COMPLETE = "complete"  # jobs: run once to completion


class NodeStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    READY = "ready"
    DOWN = "down"
    DISCONNECTED = "disconnected"


class Availability(enum.StrEnum):
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


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
class Attachment(Serializable):
    """A task's place on a cluster network: its address there and its container's MAC."""

    network_id: str
    address: str
    mac: str = ""


@dataclass
class ServiceNetwork(Serializable):
    """A network a service's tasks join (resolved from the stack file at deploy), with the
    names it answers to there besides its own."""

    id: str
    name: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class Network(Serializable):
    """A cluster-wide network: one subnet over every node where its tasks run (a VXLAN segment)."""

    id: str
    name: str
    subnet: str
    gateway: str
    vni: int
    stack: str | None = None  # the stack that made it; None: `swarmpy network create`
    driver: str = "overlay"
    internal: bool = False
    attachable: bool = False
    mtu: int = 1450
    labels: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0


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
    # Older spec versions whose tasks run `spec` too: after a rollback, the tasks the update had not
    # reached yet, which the rollback leaves alone (as Swarm does).
    alike_versions: list[int] = field(default_factory=list)
    previous_versions: list[int] = field(default_factory=list)  # the spec versions whose tasks run `previous_spec`
    networks: list[ServiceNetwork] = field(default_factory=list)  # in the order the spec lists them
    update_state: str | None = None  # updating | paused | completed | rollback_started ...
    update_message: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def runs_current(self, spec_version: int) -> bool:
        """Whether tasks of this spec version run the service's spec (no update has to replace them)."""
        return spec_version == self.spec_version or spec_version in self.alike_versions

    @property
    def current_versions(self) -> list[int]:
        return [self.spec_version, *self.alike_versions]

    def with_tasks_spec(self, spec: ServiceSpec, **changes) -> "Service":
        """The service with a new spec for its tasks (a new spec version): every task is to be replaced."""
        return self.copy(spec=spec, spec_version=self.spec_version + 1, alike_versions=[],
                         previous_spec=self.spec, previous_versions=self.current_versions, **changes)

    def rolled_back(self, **changes) -> "Service":
        """The service on its previous spec again, as a new spec version whose tasks the ones still on
        that spec already are; the spec it leaves becomes the previous one."""
        return self.copy(spec=self.previous_spec, spec_version=self.spec_version + 1,
                         alike_versions=self.previous_versions, previous_spec=self.spec,
                         previous_versions=self.current_versions, **changes)


# Labels in this namespace tell the cluster what to do (`com.swarmpy.lb.strategy`); other labels
# are the user's, which no part of the cluster acts on.
OWN_LABELS = "com.swarmpy."


def behaviour_of(record: dict) -> str:
    """A digest of what a service's record (`Service.to_dict()`) makes the cluster do: all of it but
    its revision, its times and the user's labels. Its events carry it, so that a consumer can
    let pass a write that changes none of that (a redeploy that changes a label only): reading the
    service again, its tasks and its addresses was most of what such a deploy cost the cluster."""
    spec = record.get("spec") or {}
    deploy = dict(spec.get("deploy") or {})
    deploy["labels"] = {k: v for k, v in (deploy.get("labels") or {}).items() if k.startswith(OWN_LABELS)}
    kept = {k: v for k, v in record.items() if k not in ("version", "created_at", "updated_at")}
    kept["spec"] = {**spec, "deploy": deploy}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class Task(Serializable):
    id: str
    service_id: str
    service_name: str
    spec_version: int  # the service's spec_version this task runs
    image: str = ""  # the image of that spec ("" in tasks made before tasks kept it)
    slot: int | None = None  # replicated services; None for global ones (node-bound)
    node_id: str | None = None
    desired_state: DesiredState = DesiredState.RUNNING
    state: TaskState = TaskState.NEW
    message: str = ""
    error: str = ""
    container_id: str | None = None
    exit_code: int | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)  # addresses on cluster networks
    health: str | None = None  # starting | healthy | unhealthy (Docker's words)
    stop_requested_at: float = 0.0  # when the stop signal was sent; SIGKILL follows after the grace period
    not_before: float = 0.0  # restart delay: do not start before this time
    desired_at: float = 0.0  # when the desired state last changed (the mesh drains a task before it stops)
    restart_history: list[float] = field(default_factory=list)  # times of earlier restarts of this slot
    up_at: float = 0.0  # when it first ran (and, with a healthcheck, was healthy): an update's monitor counts from it
    created_at: float = 0.0
    updated_at: float = 0.0  # time of the last observed state change

    @property
    def display_name(self) -> str:
        """Swarm's task name: `web.2` for a slot, `web.<node id>` for a global task."""
        return f"{self.service_name}.{self.slot if self.slot is not None else self.node_id}"

    @property
    def container_name(self) -> str:
        return f"{self.display_name}.{self.id}"


def has_healthcheck(spec: ServiceSpec) -> bool:
    hc = spec.healthcheck
    return bool(hc and hc.test and hc.test[0] != "NONE" and not hc.disable)


def takes_traffic(task: Task, needs_health: bool) -> bool:
    """May this task be sent connections (by the mesh, a VIP, a name)? Running, not told to
    stop, and healthy when its service has a healthcheck."""
    return (task.state == TaskState.RUNNING and task.desired_state != DesiredState.SHUTDOWN
            and (not needs_health or task.health == "healthy"))


# what the cluster's events are about (the `kind` of each; `swarmpy events --filter type=...`)
EVENT_TYPES = ("node", "service", "task", "network", "stack", "secret", "config", "container")
