"""What a worker process holds for its jobs: the store, the vault and one
Docker client per node. Jobs run in this process (no fork per job), so
connections are opened once and reused."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import docker

from swarmpy.model import Node
from swarmpy.settings import StateDir
from swarmpy.store import Store, replication
from swarmpy.vault import Vault, VaultError
from swarmpy.worker.engine import Engines, local_docker_client

LOCAL_SOCKET = os.environ.get("SWARMPY_LOCAL_DOCKER", "/var/run/docker.sock")


@dataclass
class WorkerContext:
    store: Store
    vault: Vault | None
    engines: Engines
    hostname: str
    state: StateDir | None = None  # this machine's state dir (promotion copies from it)
    worker_name: str = ""  # the rq worker this process is (holders of locks are named by it)
    images_on_nodes: set = field(default_factory=set)  # (node id, image) seen present
    _source: docker.DockerClient | None = None
    _cluster_id: str = ""

    @classmethod
    def create(cls, store: Store, vault: Vault | None, state: StateDir | None = None) -> "WorkerContext":
        ctx = cls(store=store, vault=vault, engines=None, hostname=socket.gethostname(),  # type: ignore[arg-type]
                  state=state)
        ctx.engines = Engines(ctx.identity_of)
        return ctx

    @property
    def cluster_id(self) -> str:
        if not self._cluster_id:
            self._cluster_id = self.store.cluster_info().get("id", "")
        return self._cluster_id

    def identity_of(self, node: Node) -> str | None:
        token = self.store.node_identity(node.id)
        if token is None:
            return None
        if self.vault is None:
            raise VaultError("no cluster key on this machine: cannot read node identities")
        return self.vault.decrypt(token).decode()

    def source_engine(self) -> docker.DockerClient | None:
        """This machine's own engine, where images are sent from."""
        if self._source is None and os.path.exists(LOCAL_SOCKET):
            self._source = local_docker_client(LOCAL_SOCKET)
        return self._source

    def can_reach(self, node: Node) -> bool:
        """A node on a unix socket is reachable only from the machine it is on."""
        return node.ssh_user is not None or node.machine == self.hostname

    def is_local(self, node: Node) -> bool:
        """The node is this machine's own engine (its shell commands run here, not over SSH)."""
        return node.ssh_user is None and node.machine == self.hostname


_current: WorkerContext | None = None


def set_current(ctx: WorkerContext) -> None:
    global _current
    _current = ctx


def current() -> WorkerContext:
    """The process's context; made from the default state dir when a job runs first."""
    global _current
    if _current is None:
        state = StateDir()
        config = state.load()
        vault = Vault.from_file(state.key_file) if state.key_file.exists() else None
        _current = WorkerContext.create(Store.from_config(config, replication.WORKER), vault, state)
    return _current
