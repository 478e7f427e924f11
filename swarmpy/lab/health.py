"""`lab status`: does each node's engine and sshd answer?"""

from __future__ import annotations

from swarmpy.lab import engine, sshd
from swarmpy.lab.shell import on_each
from swarmpy.lab.state import Lab, LabNode


def status(name: str) -> list[dict]:
    """One dict per node: name, address, ssh_port, docker_socket, engine and sshd (bools)."""
    lab = Lab.load(name)
    return on_each(node_status, lab.nodes)


def node_status(node: LabNode) -> dict:
    return {
        "name": node.name,
        "address": node.address,
        "ssh_port": node.ssh_port,
        "docker_socket": node.docker_socket,
        "engine": engine.ping(node.docker_socket),
        "sshd": sshd.answers(node.address, node.ssh_port),
    }
