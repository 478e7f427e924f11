"""What the manager's API and loops share: the store, the vault, the job queues."""

from __future__ import annotations

from dataclasses import dataclass

from swarmpy.manager.dispatcher import JobQueues
from swarmpy.settings import ClusterConfig, StateDir
from swarmpy.store import Store, replication
from swarmpy.vault import Vault


@dataclass
class ManagerContext:
    store: Store
    vault: Vault
    queues: JobQueues
    token: str
    manager_id: str
    config: ClusterConfig
    state: StateDir

    @classmethod
    def from_state_dir(cls, state: StateDir, manager_id: str) -> "ManagerContext":
        config = state.load()
        store = Store.from_config(config)
        return cls(store=store, vault=Vault.from_file(state.key_file),
                   queues=JobQueues(store, connection=replication.client(config, decode_responses=False)),
                   token=state.token() or "", manager_id=manager_id, config=config, state=state)
