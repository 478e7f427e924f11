"""Acting on one node for its networks: shell commands (over its SSH session, or
on this machine for the manager's own engine) and its Docker networks (over its
engine's API).

Commands go to one long-lived `sh` per node, fed scripts on its stdin: a login
shell per command would cost the host's login scripts every time (root's
`.bashrc` runs for every SSH command), which can be slow. The shell ends with
the SSH session; nothing is left running on the host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import subprocess
import threading
import time

import paramiko
from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool

from swarmpy.model import Network
from swarmpy.network import names

log = logging.getLogger(__name__)


class HostError(Exception):
    """A command failed on the node, or the node's Docker network cannot be made."""


class HostShell:
    """Runs shell scripts on a node. `session` None: this machine."""

    def __init__(self, session: paramiko.SSHClient | None):
        self.session = session
        self._channel: paramiko.Channel | None = None
        self._lock = threading.Lock()

    def run(self, script: str, timeout: float = 30) -> tuple[int, str]:
        """(exit status, output with stderr) of `script` run by `sh`."""
        with self._lock:
            if self.session is None:
                done = subprocess.run(["sh"], input=script, capture_output=True, text=True, timeout=timeout)
                return done.returncode, done.stdout + done.stderr
            try:
                return self._remote(script, timeout)
            except Exception:
                self._close_channel()
                raise

    def _remote(self, script: str, timeout: float) -> tuple[int, str]:
        if self._channel is None or self._channel.closed or self._channel.exit_status_ready():
            self._channel = self.session.get_transport().open_session()
            self._channel.settimeout(timeout)
            self._channel.exec_command("exec sh")
        nonce = secrets.token_hex(8)
        done = f"SWARMPY_DONE_{nonce}"
        self._channel.settimeout(timeout)
        self._channel.sendall(f"sh <<'SWARMPY_SCRIPT_{nonce}' 2>&1\n{script}\nSWARMPY_SCRIPT_{nonce}\n"
                              f"echo {done} $?\n".encode())
        buffer = b""
        deadline = time.monotonic() + timeout
        marker = done.encode() + b" "
        while marker not in buffer:
            if time.monotonic() > deadline:
                raise HostError(f"no answer from the host's shell within {timeout:.0f} s")
            chunk = self._channel.recv(65536)
            if not chunk:
                raise HostError("the host's shell ended")
            buffer += chunk
        out, _, tail = buffer.partition(marker)
        return int(tail.split(b"\n", 1)[0].strip() or b"1"), out.decode(errors="replace")

    def _close_channel(self) -> None:
        if self._channel is not None:
            try:
                self._channel.close()
            except Exception:
                pass
        self._channel = None

    def close(self) -> None:
        with self._lock:
            self._close_channel()

    def check(self, script: str, timeout: float = 30) -> str:
        code, out = self.run(script, timeout)
        if code != 0:
            raise HostError(out.strip().splitlines()[-1] if out.strip() else f"exit status {code}")
        return out


# ---------------------------------------------------------------------- Docker networks


def docker_networks(client, cluster_id: str) -> dict[str, dict]:
    """The node's Docker networks this cluster made: network id -> {"Id", "Name", "Subnet"}."""
    found = client.api.networks(filters={"label": f"{names.LABEL_CLUSTER}={cluster_id}"})
    return {(n.get("Labels") or {}).get(names.LABEL_NETWORK, ""):
            {"Id": n["Id"], "Name": n["Name"], "Subnet": next(iter(_subnets(n)), "")} for n in found}


def engine_subnets(client, cluster_id: str) -> set[str]:
    """Subnets of the engine's networks that are not this cluster's: a network of ours may not
    overlap them (the engine would refuse it)."""
    return {subnet for n in client.api.networks() if (n.get("Labels") or {}).get(names.LABEL_CLUSTER) != cluster_id
            for subnet in _subnets(n)}


def _subnets(network: dict) -> list[str]:
    """An engine network's IPv4 subnets."""
    return [c["Subnet"] for c in (network.get("IPAM") or {}).get("Config") or []
            if c.get("Subnet") and ":" not in c["Subnet"]]


def create_docker_network(client, network: Network, cluster_id: str) -> None:
    """The network's bridge on this node, with the cluster's subnet and gateway; every container
    on it gets its address from the cluster. An engine's network of that name that is not this
    network (the user's own, say) is refused."""
    name = names.docker_network(network)
    for n in client.api.networks(names=[name]):
        if n["Name"] != name:
            continue
        if (n.get("Labels") or {}).get(names.LABEL_NETWORK) == network.id:
            return
        raise HostError(f"the engine has a network named {name} that is not this cluster's")
    options = {"com.docker.network.bridge.name": names.bridge(network.id),
               names.MTU_OPTION: str(network.mtu),
               "com.docker.network.bridge.enable_icc": "true"}
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=network.subnet, gateway=network.gateway)])
    labels = {names.LABEL_CLUSTER: cluster_id, names.LABEL_NETWORK: network.id}
    try:
        client.api.create_network(name, driver="bridge", options=options, ipam=ipam,
                                  internal=network.internal, labels=labels, check_duplicate=True)
    except APIError as e:
        if e.status_code != 409:
            holders = _overlapping(client, network.subnet)
            raise HostError(f"cannot create network {name}: {e.explanation or e}"
                            + (f" ({', '.join(holders)} on the engine)" if holders else "")) from e


def _overlapping(client, subnet: str) -> list[str]:
    """The engine's networks whose subnet overlaps `subnet`, named with it."""
    wanted = ipaddress.ip_network(subnet)
    return [f"{n['Name']} {theirs}" for n in client.api.networks() for theirs in _subnets(n)
            if ipaddress.ip_network(theirs, strict=False).overlaps(wanted)]


def remove_docker_network(client, network_id: str) -> bool:
    """True when it is gone; False while containers still use it. An endpoint whose container is
    gone is removed first, as `docker network disconnect -f` does: after a quick kill and removal
    the engine now and then keeps one, and refused to remove the network for good ("has active
    endpoints", with nothing attached), so a new network given its subnet could never be made."""
    for attempt in range(2):
        try:
            client.api.remove_network(network_id)
        except NotFound:
            pass
        except APIError as e:
            if "active endpoints" not in str(e) and e.status_code != 403:
                raise
            stale = _stale_endpoints(client, network_id)
            if attempt or not stale:
                return False
            for name in stale:
                log.warning("network %s: removing the endpoint %s, whose container is gone", network_id, name)
                with contextlib.suppress(NotFound):
                    client.api.disconnect_container_from_network(name, network_id, force=True)
            continue
        return True
    return False


def _stale_endpoints(client, network_id: str) -> list[str]:
    """The names of the network's endpoints whose container no longer exists (the engine lists
    one it has no container for as `ep-<id>`)."""
    try:
        attached = client.api.inspect_network(network_id).get("Containers") or {}
    except NotFound:
        return []
    stale = []
    for key, endpoint in attached.items():
        try:
            if not key.startswith("ep-"):
                client.api.inspect_container(key)
                continue
        except NotFound:
            pass
        stale.append(endpoint.get("Name") or key)
    return stale


# ---------------------------------------------------------------------- the host's own resolvers


def resolvers(shell: HostShell) -> list[str]:
    """The nameservers of the host (what Docker gives containers when told nothing): where names
    outside the cluster go after the cluster's DNS said it does not know them."""
    out = shell.check("cat /etc/resolv.conf 2>/dev/null; echo '== systemd';"
                      " cat /run/systemd/resolve/resolv.conf 2>/dev/null; true")
    main, _, systemd = out.partition("== systemd")
    found = _nameservers(main)
    if found and all(ipaddress.ip_address(a).is_loopback for a in found):  # a local stub: Docker looks further
        found = _nameservers(systemd) or found
    return found


def _nameservers(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                ipaddress.ip_address(words[1])
            except ValueError:
                continue
            out.append(words[1])
    return out
