"""The worker's Docker clients of the lab's hosts, over SSH."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from swarmpy.lab import sshd
from swarmpy.worker.engine import Engines


def test_a_client_whose_session_was_dropped_fails_cleanly_and_never_runs_ssh_here(lab):
    """Jobs share one client per node, and a fault in one drops it for all. A thread still holding
    the dropped client got the SDK's fallback: `ssh node` run on this machine, which fails, or
    reaches whatever `node` names in this machine's SSH configuration."""
    host = lab.nodes[0]
    kind, key = open(sshd.host_key(host) + ".pub").read().split()[:2]
    node = SimpleNamespace(id="n1", address=host.address, ssh_user="root", ssh_port=host.ssh_port,
                           host_key=f"{kind} {key}", docker_host=None, hostname=host.name)
    engines = Engines(lambda _node: open(lab.identity).read())
    try:
        held = engines.client(node)
        assert held.api.version()["Version"]
        engines.drop(node.id)
        with pytest.raises(requests.exceptions.ConnectionError, match="SSH session to the node was closed"):
            held.api.containers()
        assert engines.client(node).api.containers() is not None  # a new session serves the next job
    finally:
        engines.close()
