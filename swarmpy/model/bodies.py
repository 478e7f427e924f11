"""The bodies of the API's requests, as typed as the specs they carry.

`swarmpy.model.validation` checks a body against these (types first, then the
rules), and the OpenAPI description is made from them: one definition for the
manager, the CLI and the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from swarmpy.model.serial import Serializable
from swarmpy.model.spec import ServiceSpec, StackSpec


@dataclass
class SshAddress(Serializable):
    host: str
    port: int = 22
    user: str = "root"


@dataclass
class NodeAdd(Serializable):
    name: str
    ssh: SshAddress
    labels: dict[str, str] = field(default_factory=dict)
    identity: str | None = None  # a private key's path on the manager's machine
    host_key: str | None = None  # the host key to pin, as `ssh-keyscan` prints it
    accept_host_key: bool = False


@dataclass
class NodeUpdate(Serializable):
    version: int | None = None  # refused with 409 when the node changed since
    availability: Literal["active", "pause", "drain"] | None = None
    label_add: dict[str, str] = field(default_factory=dict)
    label_rm: list[str] = field(default_factory=list)
    lb: bool | None = None


@dataclass
class StackObjects(Serializable):
    """The content of the secrets and configs a stack declares, base64, by their key in the file."""

    secrets: dict[str, str] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)


@dataclass
class StackDeploy(Serializable):
    stack: StackSpec
    prune: bool = False
    objects: StackObjects = field(default_factory=StackObjects)


@dataclass
class ServiceScale(Serializable):
    replicas: int
    version: int | None = None


@dataclass
class ServiceCreate(Serializable):
    """`service create`: a service of no stack. Its secrets, configs and networks are named as
    the cluster knows them (made with `secret create`, `network create`)."""

    spec: ServiceSpec


@dataclass
class ServiceUpdate(Serializable):
    """`service update`: the service's whole new spec (the CLI applies its flags to the current
    one); `version` refuses it with 409 when the service changed since it was read."""

    spec: ServiceSpec
    version: int | None = None
    force: bool = False  # replace the tasks even when the spec is unchanged


@dataclass
class ObjectCreate(Serializable):
    name: str
    data: str  # base64
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class NetworkCreate(Serializable):
    name: str
    subnet: str | None = None
    attachable: bool = False
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    mtu: int | None = None


@dataclass
class ClusterUpdate(Serializable):
    max_replicas: int | None = None  # per service
    allow_privileged: bool | None = None  # privileged tasks, SYS_ADMIN, binds of the host's own files


@dataclass
class TokenCreate(Serializable):
    stack: str | None = None  # the one stack the token may deploy and read
    allow_privileged: bool = False  # this stack's services may use the dangerous options
    metrics: bool = False  # instead of a stack: a token that may only read /metrics


@dataclass
class ExecStart(Serializable):
    """`service exec`: the command to run in a running task of the service (the first, or the
    one of `slot`), with a TTY of `width`x`height` and the client's stdin when asked."""

    cmd: list[str]
    slot: int | None = None
    tty: bool = False
    stdin: bool = False
    width: int | None = None
    height: int | None = None


@dataclass
class ExecInput(Serializable):
    """What the client typed (base64), the end of its stdin, or its terminal's new size."""

    data: str = ""
    eof: bool = False
    width: int | None = None
    height: int | None = None
