"""Where a machine's swarmpy state lives and what it says: the state dir.

    <state dir>/cluster.json   redis URL, API address, advertise address, settings
    <state dir>/token          the cluster token (API bearer token), mode 0600
    <state dir>/cluster.key    the vault key, mode 0600
    <state dir>/ca.crt         the cluster CA's certificate
    <state dir>/tls/           the CA's key, this host's certificates (API, store) and their keys
    <state dir>/ssh/           the cluster's own SSH key (used when `node add` has no --identity)
    <state dir>/run/           pid files and logs of the processes `swarmpy init` started, and
                               parts.json: what each of them is doing, as their supervisor sees it;
                               lb-metrics.<pid>.sock, loops-metrics.<pid>.sock: the figures of a load
                               balancer, of a manager's control loops, for the manager's /metrics
    <state dir>/redis/         the embedded Redis (AOF), when swarmpy owns it (a replica on a promoted manager)
    <state dir>/sentinel/      the Redis Sentinel of this manager (its config, which it rewrites)
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path(os.environ.get("SWARMPY_STATE_DIR", "/var/lib/swarmpy"))
DEFAULT_API_PORT = 2378  # beside Swarm's 2377, so both can run on one machine
DEFAULT_REDIS_PORT = 6380  # beside a system Redis on 6379


@dataclass
class ClusterConfig:
    redis_url: str
    api_url: str
    advertise_addr: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    embedded_redis: bool = False
    heartbeat: float = 5.0  # seconds between engine pings of each node
    workers: int = 2  # job processes of a worker
    threads: int = 12  # jobs each job process runs at once
    per_node: int = 4  # jobs one job process runs at once on one node (an engine's sweet spot is ~8)
    sessions: int = 16  # logs and exec sessions each job process serves at once, besides its jobs
    default_addr_pool: str = "10.0.0.0/8"  # where networks' subnets come from (Swarm's default)
    subnet_size: int = 24  # prefix length of each network's subnet
    sentinels: list[str] = field(default_factory=list)  # "host:port" of the Sentinels this host knows
    # the store's users this host's processes log in as -> their passwords (empty: the URL's password)
    redis_users: dict[str, str] = field(default_factory=dict)
    redis_tls: dict[str, str] = field(default_factory=dict)  # the store's TLS files: ca, cert, key (empty: none)
    extra: dict = field(default_factory=dict)


class StateDir:
    def __init__(self, path: Path | str | None = None):
        # absolute: its parts are started with it, and `leave` knows them by it (see bootstrap.leftovers)
        self.path = Path(path).absolute() if path else DEFAULT_STATE_DIR

    @property
    def config_file(self) -> Path:
        return self.path / "cluster.json"

    @property
    def token_file(self) -> Path:
        return self.path / "token"

    @property
    def key_file(self) -> Path:
        return self.path / "cluster.key"

    @property
    def ca_file(self) -> Path:
        """The cluster CA's certificate: what a client trusts (beside the token)."""
        return self.path / "ca.crt"

    @property
    def tls_dir(self) -> Path:
        """The CA's key and this manager's certificate and key."""
        return self.path / "tls"

    def store_tls(self) -> dict[str, str]:
        """Where this host keeps the store's TLS files: the CA's certificate, and the host's own
        certificate and key (its Redis and Sentinel serve with them, its clients show them)."""
        return {"ca": str(self.ca_file), "cert": str(self.tls_dir / "store.crt"),
                "key": str(self.tls_dir / "store.key")}

    @property
    def run_dir(self) -> Path:
        return self.path / "run"

    @property
    def ssh_dir(self) -> Path:
        return self.path / "ssh"

    @property
    def redis_dir(self) -> Path:
        return self.path / "redis"

    @property
    def sentinel_dir(self) -> Path:
        return self.path / "sentinel"

    @property
    def parts_file(self) -> Path:
        return self.run_dir / "parts.json"

    def read_parts(self) -> dict | None:
        """What this machine's supervisor last wrote of its parts (None when none runs)."""
        try:
            return json.loads(self.parts_file.read_text())
        except (OSError, ValueError):
            return None

    def pid_file(self, process: str) -> Path:
        """Where a process that `init` or its supervisor started notes its pid."""
        return self.run_dir / f"{process}.pid"

    def metrics_socket(self, process: str, pid: int) -> Path:
        """Where process `pid`, a load balancer ("lb") or a manager's control loops ("loops"), serves
        its figures (a unix socket: see `swarmpy.lb.metrics`)."""
        return self.run_dir / f"{process}-metrics.{pid}.sock"

    def metrics_sockets(self, process: str) -> list[Path]:
        return sorted(self.run_dir.glob(f"{process}-metrics.*.sock"))

    @property
    def managers_file(self) -> Path:
        return self.run_dir / "managers"

    def known_managers(self) -> list[str]:
        """The API addresses of the managers this machine's manager last saw alive."""
        try:
            return self.managers_file.read_text().split()
        except OSError:
            return []

    def exists(self) -> bool:
        return self.config_file.exists()

    def load(self) -> ClusterConfig:
        data = json.loads(self.config_file.read_text())
        return ClusterConfig(**data)

    def save(self, config: ClusterConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        self.config_file.write_text(json.dumps(asdict(config), indent=2) + "\n")
        os.chmod(self.config_file, 0o600)  # the Redis URL carries its password

    def token(self) -> str | None:
        try:
            return self.token_file.read_text().strip()
        except FileNotFoundError:
            return None

    def create_token(self) -> str:
        token = self.token()
        if token:
            return token
        token = "SWMTKN-" + secrets.token_urlsafe(32)
        self.write_secret_file(self.token_file, token + "\n")
        return token

    @staticmethod
    def write_secret_file(path: Path, content: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
