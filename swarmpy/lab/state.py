"""What a lab is, as recorded on disk in `<root>/<name>/lab.json`.

Every name a lab gives to something on this machine (bridge, links,
namespaces, cgroups) is derived from the lab's name alone, so `down` can find
them even when `up` crashed before writing anything else. The state file is
written before each step that creates something, and records what is only
known at run time (subnet, pids).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from swarmpy.lab.shell import LabError

ROOT = Path("/var/lib/swarmpy/lab")
STATE_FILE = "lab.json"
SSH_PORT = 22

# Short enough that a node's sockets (unix paths, 108 bytes at most) fit.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_NODE = re.compile(r"^node[0-9]+$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise LabError(f"bad lab name {name!r}: use 1-24 of a-z, 0-9 and '-', starting with a letter or digit")
    return name


def lab_dir(name: str) -> Path:
    return ROOT / check_name(name)


def _tag(name: str) -> str:
    """At most 7 characters naming the lab in link names (IFNAMSIZ is 15 with '\\0' 16)."""
    if len(name) <= 7:
        return name
    return name[:2] + hashlib.sha1(name.encode()).hexdigest()[:5]


def bridge_name(name: str) -> str:
    return f"sp-{_tag(name)}"


def host_link_name(name: str, index: int) -> str:
    """The host end of node `index`'s veth pair, attached to the bridge."""
    return f"sp-{_tag(name)}-{index}"


def netns_name(name: str, node: str) -> str:
    return f"swarmpy-{name}-{node}"


def is_node_netns(name: str, netns: str) -> bool:
    prefix = f"swarmpy-{name}-"
    return netns.startswith(prefix) and bool(_NODE.match(netns[len(prefix):]))


def cgroup_name(name: str) -> str:
    """The cgroup (in every hierarchy) under which all of the lab's processes live."""
    return f"swarmpy-lab-{name}"


@dataclass
class LabNode:
    """One host of the lab: its own namespaces, dockerd and sshd."""

    name: str
    index: int
    address: str
    netns: str
    dir: str
    docker_socket: str
    bip: str
    ssh_port: int = SSH_PORT
    pid_dockerd: int | None = None
    pid_sshd: int | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def ssh_url(self) -> str:
        return f"ssh://root@{self.address}"

    @property
    def uts(self) -> str:
        """The file a bind mount keeps the node's UTS namespace (its hostname) alive on."""
        return os.path.join(self.dir, "uts")

    @property
    def data_root(self) -> str:
        return os.path.join(self.dir, "docker")

    @property
    def exec_root(self) -> str:
        return os.path.join(self.dir, "exec")


@dataclass
class Lab:
    """A lab as recorded on disk. All paths are strings (paramiko wants str)."""

    name: str
    dir: str
    subnet: str
    bridge: str
    host_address: str
    bip_pool: str
    cgroup: str
    nodes: list[LabNode] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def identity(self) -> str:
        """The client's private key, authorized on every node."""
        return os.path.join(self.dir, "id_ed25519")

    @property
    def known_hosts(self) -> str:
        return os.path.join(self.dir, "known_hosts")

    @property
    def ssh_config(self) -> str:
        """`ssh -F <this> node1` logs into node1 with the lab's key and known_hosts."""
        return os.path.join(self.dir, "ssh_config")

    @property
    def bin_dir(self) -> str:
        """Holds an `ssh` that uses `ssh_config`: put first on PATH for `docker -H ssh://`."""
        return os.path.join(self.dir, "bin")

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"lab {self.name} has no node {name!r} (it has {', '.join(n.name for n in self.nodes)})")

    def save(self) -> None:
        """Write the state atomically, so a crash never leaves half a file."""
        path = os.path.join(self.dir, STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, name: str) -> "Lab":
        path = lab_dir(name) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab named {name!r} (start one with `swarmpy lab up --name {name}`)") from None
        except ValueError as e:
            raise LabError(f"{path} is not readable state ({e}); `swarmpy lab down --name {name}` removes it") from None
        nodes = [LabNode(**n) for n in data.pop("nodes")]
        return cls(nodes=nodes, **data)


def recorded_labs() -> list[Lab]:
    """Every lab with a readable state file on this machine."""
    labs = []
    if ROOT.is_dir():
        for entry in sorted(ROOT.iterdir()):
            if (entry / STATE_FILE).is_file():
                try:
                    labs.append(Lab.load(entry.name))
                except LabError:
                    pass
    return labs
