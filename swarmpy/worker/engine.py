"""Docker clients of the nodes: the local engine on its unix socket, every other
node over SSH. The only place paramiko is used.

The docker SDK's own `ssh://` transport takes its key from `~/.ssh/config` and
its host keys from `~/.ssh/known_hosts`. swarmpy keeps its own: the node's
identity (encrypted in Redis) and the host key recorded when the node was
added; an unknown or changed host key is refused (RejectPolicy), never
accepted silently. Over that session it runs `docker system dial-stdio`, as
the SDK does, so each HTTP connection to the engine is one SSH channel.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from dataclasses import dataclass

import docker
import paramiko
import requests
from docker.transport.sshconn import SSHConnectionPool, SSHHTTPAdapter

from swarmpy.model import Node

log = logging.getLogger(__name__)
logging.getLogger("paramiko").setLevel(logging.WARNING)

API_VERSION = "1.41"  # Docker 20.10; every engine since speaks it
CONNECT_TIMEOUT = 5.0
KEEPALIVE = 5


class EngineError(Exception):
    """A node's engine cannot be reached (SSH refused, host key wrong, no engine).
    `transient`: trying again later may help (a refused connection may; a wrong host key does not)."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


@dataclass
class SSHTarget:
    host: str
    port: int = 22
    user: str = "root"
    host_key: str | None = None  # "<type> <base64>"; None only to fetch it (node add)
    identity: str | None = None  # private key, PEM/OpenSSH text


def load_private_key(text: str) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise EngineError("the SSH identity is not a private key paramiko can read (ed25519, ecdsa, rsa)",
                      transient=False)


def parse_host_key(line: str) -> paramiko.PKey:
    kind, data = line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(data))


def host_key_name(target: SSHTarget) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def ssh_connect(target: SSHTarget, accept_new_key: bool = False) -> tuple[paramiko.SSHClient, str]:
    """An SSH session to the node, host key verified. Returns it and the host key line."""
    client = paramiko.SSHClient()
    if target.host_key:
        client.get_host_keys().add(host_key_name(target), target.host_key.split()[0],
                                   parse_host_key(target.host_key))
    client.set_missing_host_key_policy(
        paramiko.AutoAddPolicy() if accept_new_key and not target.host_key else paramiko.RejectPolicy())
    kwargs = dict(hostname=target.host, port=target.port, username=target.user, timeout=CONNECT_TIMEOUT,
                  banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT,
                  allow_agent=False, look_for_keys=False)
    if target.identity:
        kwargs["pkey"] = load_private_key(target.identity)
    try:
        client.connect(**kwargs)
    except paramiko.BadHostKeyException as e:
        raise EngineError(f"host key of {target.host} changed: refusing it (remove and add the node again "
                          "if the change is expected)", transient=False) from e
    except paramiko.AuthenticationException as e:
        raise EngineError(f"SSH to {target.user}@{target.host}:{target.port}: authentication failed "
                          "(is the identity's public key in the host's authorized_keys?)", transient=False) from e
    except paramiko.SSHException as e:
        if "not found in known_hosts" in str(e):
            raise EngineError(f"host key of {target.host} is unknown: add the node with --accept-host-key "
                              "to trust it, or put it in the known_hosts file", transient=False) from e
        raise EngineError(f"SSH to {target.user}@{target.host}:{target.port} failed: {e}") from e
    except OSError as e:
        raise EngineError(f"SSH to {target.host}:{target.port} failed: {e.strerror or e}") from e
    transport = client.get_transport()
    transport.set_keepalive(KEEPALIVE)
    key = transport.get_remote_server_key()
    return client, f"{key.get_name()} {key.get_base64()}"


class NodeConnectionPool(SSHConnectionPool):
    """The SDK's pool hands out a pooled connection without asking whether it still stands (it
    skips urllib3's check, which costs a file descriptor per channel). When a node's engine
    restarts, every pooled `dial-stdio` ends, and each would fail the next request given it: a
    connection whose channel ended is closed here, so its request opens a new channel."""

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        channel = conn.sock
        if channel is not None and (channel.closed or channel.eof_received or channel.exit_status_ready()):
            conn.close()
        return conn


class NodeSSHAdapter(SSHHTTPAdapter):
    """The SDK's SSH adapter, with our session instead of ~/.ssh."""

    def __init__(self, ssh_client: paramiko.SSHClient, timeout: float, max_pool_size: int = 10):
        self._session = ssh_client
        super().__init__("ssh://node", timeout=timeout, max_pool_size=max_pool_size, shell_out=False)

    def _create_paramiko_client(self, base_url):
        self.ssh_client = self._session
        self.ssh_params = {}

    def _connect(self):
        pass  # already connected; a broken session makes a new client (see Engines)

    def get_connection(self, url, proxies=None):
        # The SDK keeps one pool per request URL, so every container id or path opened a new SSH
        # channel and `docker system dial-stdio` (~0.1 s each). All requests go to one engine: one
        # pool serves them all.
        with self.pools.lock:
            pool = self.pools.get("node")
            if pool is None:
                if self._session.get_transport() is None:
                    # closed under a thread still holding this client (Engines dropped it): the
                    # SDK's pool would fall back to running `ssh node` on this machine
                    raise requests.exceptions.ConnectionError("the SSH session to the node was closed")
                pool = NodeConnectionPool(ssh_client=self._session, timeout=self.timeout,
                                          maxsize=self.max_pool_size)
                self.pools["node"] = pool
        return pool


def ssh_docker_client(ssh_client: paramiko.SSHClient, timeout: float = 60) -> docker.DockerClient:
    api = docker.APIClient(base_url="tcp://127.0.0.1:9", version=API_VERSION, timeout=timeout)
    adapter = NodeSSHAdapter(ssh_client, timeout)
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api.base_url = "http+docker://ssh"
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client


def local_docker_client(socket: str, timeout: float = 60) -> docker.DockerClient:
    url = socket if "://" in socket else f"unix://{socket}"
    return docker.DockerClient(base_url=url, version=API_VERSION, timeout=timeout)


class Engines:
    """One Docker client per node, reused across jobs; dropped when it breaks."""

    def __init__(self, identity_of, timeout: float = 60):
        self._identity_of = identity_of  # node -> private key text (decrypted), or None
        self._timeout = timeout
        self._clients: dict[str, tuple[docker.DockerClient, paramiko.SSHClient | None, tuple]] = {}
        self._lock = threading.Lock()
        self._connecting: dict[str, threading.Lock] = {}

    def client(self, node: Node) -> docker.DockerClient:
        fingerprint = (node.address, node.ssh_user, node.ssh_port, node.host_key, node.docker_host)
        with self._lock:
            node_lock = self._connecting.setdefault(node.id, threading.Lock())
        with node_lock:  # one connection attempt per node at a time; other nodes do not wait
            entry = self._clients.get(node.id)
            if entry and entry[2] == fingerprint and (entry[1] is None or _session_alive(entry[1])):
                return entry[0]
            if entry:
                self._close(entry)
            client, session = self._connect(node)
            self._clients[node.id] = (client, session, fingerprint)
            return client

    def session(self, node: Node) -> paramiko.SSHClient | None:
        """The node's SSH session (connected if need be); None for an engine on a local socket."""
        self.client(node)
        entry = self._clients.get(node.id)
        return entry[1] if entry else None

    def _connect(self, node: Node):
        if node.ssh_user is None:
            return local_docker_client(node.docker_host or "/var/run/docker.sock", self._timeout), None
        target = SSHTarget(node.address, node.ssh_port, node.ssh_user, node.host_key, self._identity_of(node))
        session, _ = ssh_connect(target)
        return ssh_docker_client(session, self._timeout), session

    def drop(self, node_id: str) -> None:
        with self._lock:
            entry = self._clients.pop(node_id, None)
        if entry:
            self._close(entry)

    @staticmethod
    def _close(entry) -> None:
        client, session, _ = entry
        try:
            client.close()
        except Exception:
            pass
        if session is not None:
            session.close()

    def close(self) -> None:
        for node_id in list(self._clients):
            self.drop(node_id)


def _session_alive(session: paramiko.SSHClient) -> bool:
    transport = session.get_transport()
    return transport is not None and transport.is_active()


def run_command(session: paramiko.SSHClient, command: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run a shell command on the host; (exit status, stdout, stderr)."""
    _, stdout, stderr = session.exec_command(command, timeout=timeout)
    out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out, err


def write_files(session: paramiko.SSHClient, files: dict[str, tuple[bytes, int]]) -> None:
    """Write files on the host over SFTP: path -> (content, mode); parent directories are made."""
    sftp = session.open_sftp()
    try:
        for path, (content, mode) in files.items():
            parts = path.rstrip("/").split("/")[:-1]
            for i in range(2, len(parts) + 1):
                d = "/".join(parts[:i])
                try:
                    sftp.stat(d)
                except FileNotFoundError:
                    sftp.mkdir(d, 0o700)
            with sftp.open(path, "wb") as f:
                f.chmod(mode)
                f.write(content)
    finally:
        sftp.close()
