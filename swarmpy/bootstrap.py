"""What `swarmpy init` and `swarmpy leave` do on this machine: the state dir,
the embedded Redis, and the background processes (manager, worker)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmpy import pki
from swarmpy.settings import DEFAULT_API_PORT, DEFAULT_REDIS_PORT, ClusterConfig, StateDir
from swarmpy.store import replication
from swarmpy.vault import Vault

log = logging.getLogger(__name__)


class BootstrapError(Exception):
    pass


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def ensure_ssh_key(state: StateDir) -> str:
    """The cluster's own SSH key (for `node add` without --identity); returns the public key line."""
    private, public = state.ssh_dir / "id_ed25519", state.ssh_dir / "id_ed25519.pub"
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        state.write_secret_file(private, key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.OpenSSH,
                                                           serialization.NoEncryption()).decode())
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
        public.write_text(f"{line} swarmpy@{socket.gethostname()}\n")
    return public.read_text().strip()


def free_port(binds: list[str], port: int) -> int:
    while not all(port_free(b, port) for b in binds):
        port += 1
    return port


def embedded_redis(state: StateDir, advertise_addr: str,
                   port: int = DEFAULT_REDIS_PORT) -> tuple[str, list[str], dict[str, str], dict[str, str]]:
    """The configs of a redis-server owned by this cluster and of a Sentinel watching it (their
    supervisor runs them): AOF under the state dir, a user per component, TLS with a certificate
    of the cluster's CA (when it has one: not with --http), bound to the advertise address (so
    promoted managers reach them) and loopback. Returns the Redis URL, the Sentinel's address,
    the users' passwords and the TLS files."""
    if shutil.which("redis-server") is None:
        raise BootstrapError("redis-server is not installed (apt-get install redis-server), "
                             "or give an existing one with --redis URL")
    binds = ["127.0.0.1"] + ([advertise_addr] if advertise_addr not in ("127.0.0.1", "localhost") else [])
    port = free_port(binds, port)
    sentinel_port = free_port(binds, replication.DEFAULT_SENTINEL_PORT)
    users = replication.new_users()
    tls = state.store_tls() if state.ca_file.exists() else {}
    if tls:
        pki.issue(state.ca_file, state.tls_dir / "ca.key", Path(tls["cert"]), Path(tls["key"]), binds[::-1])
    for directory in (state.redis_dir, state.sentinel_dir, state.run_dir):
        directory.mkdir(parents=True, exist_ok=True)
    state.write_secret_file(state.redis_dir / "redis.conf", replication.redis_conf(
        port, binds, users, tls, str(state.redis_dir), str(state.run_dir / "redis.log"), announce=binds[-1]))
    state.write_secret_file(state.sentinel_dir / "sentinel.conf", replication.sentinel_conf(
        sentinel_port, binds, users, tls, str(state.sentinel_dir), str(state.run_dir / "sentinel.log"),
        announce=binds[-1], master=(binds[-1], port), sentinel_count=1))
    return (f"{'rediss' if tls else 'redis'}://{binds[-1]}:{port}/0", [f"{binds[-1]}:{sentinel_port}"],
            users, tls)


def _master_known(config: ClusterConfig) -> bool:
    import redis
    try:
        replication.master_address(config)
        return True
    except (redis.RedisError, OSError):
        return False


def _redis_answers(url: str, **kwargs) -> bool:
    import redis
    try:
        return bool(replication.url_client(url, socket_timeout=1, **kwargs).ping())
    except redis.RedisError:
        return False


def _wait(check, seconds: float, message: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise BootstrapError(message)


def spawn(state: StateDir, name: str, args: list[str]) -> int:
    """Start `swarmpy <args>` in the background, detached, with its pid file and log under run/."""
    state.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(state.run_dir / f"{name}.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "swarmpy", *args, "--state-dir", str(state.path)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    state.pid_file(name).write_text(f"{process.pid}\n")
    return process.pid


def parts_of(config: ClusterConfig, lb: bool) -> list[str]:
    return [*(["redis", "sentinel"] if config.embedded_redis else []), "manager", *(["lb"] if lb else []), "worker"]


SYSTEMD_UNITS = Path("/etc/systemd/system")


def has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def unit_name(state: StateDir) -> str:
    """One unit per state dir (clusters side by side each have theirs)."""
    return f"swarmpy-{hashlib.sha256(str(state.path.resolve()).encode()).hexdigest()[:8]}.service"


def unit_text(state: StateDir, parts: list[str]) -> str:
    """A systemd unit running the supervisor: systemd restarts it, it restarts its parts."""
    command = " ".join([sys.executable, "-m", "swarmpy", "supervise", "--local-node",
                        *(f"--part={p}" for p in parts), "--state-dir", str(state.path)])
    return "\n".join([
        "[Unit]", f"Description=swarmpy: {', '.join(parts)} (state dir {state.path})",
        "After=network-online.target docker.service", "Wants=network-online.target", "",
        "[Service]", f"ExecStart={command}", "Restart=always", "RestartSec=1",
        "KillMode=mixed",  # SIGTERM to the supervisor, which stops its parts in order; then SIGKILL to what is left
        "TimeoutStopSec=60", "",
        "[Install]", "WantedBy=multi-user.target", ""])


def init(state: StateDir, redis_url: str | None, advertise_addr: str, api_port: int = DEFAULT_API_PORT,
         heartbeat: float = 5.0, workers: int = 2, lb: bool = True, addr_pool: str = "10.0.0.0/8",
         subnet_size: int = 24, systemd: bool = False, http: bool = False) -> ClusterConfig:
    if http and advertise_addr != "127.0.0.1":
        raise BootstrapError("--http: plain HTTP is only for a cluster on 127.0.0.1 (--advertise-addr "
                             "127.0.0.1); other hosts reach the API over HTTPS only")
    if systemd and not has_systemd():
        raise BootstrapError("--systemd: this machine does not run systemd (no /run/systemd/system); "
                             "without --systemd, swarmpy's own supervisor keeps the parts running")
    if state.exists() and running(state):
        raise BootstrapError(f"this machine is already in a cluster (state dir {state.path}); "
                             "run `swarmpy leave` first")
    state.path.mkdir(parents=True, exist_ok=True)
    os.chmod(state.path, 0o700)
    state.create_token()
    Vault.create_key(state.key_file)
    if not http:
        state.tls_dir.mkdir(mode=0o700, exist_ok=True)
        pki.create_ca(state.ca_file, state.tls_dir / "ca.key", advertise_addr)
    ensure_ssh_key(state)
    if not port_free("0.0.0.0", api_port):
        raise BootstrapError(f"port {api_port} is in use: choose another with --api-port")
    embedded = redis_url is None
    if not embedded and not _redis_answers(redis_url):
        raise BootstrapError(f"no Redis answers at {redis_url.split('@')[-1]}")
    # from choosing a free port for the embedded Redis until it listens there, no other cluster of
    # this machine chooses one (two `init`s at once would both take the first free port)
    with _machine_lock("ports"):
        sentinels, users, tls = [], {}, {}
        if embedded:
            redis_url, sentinels, users, tls = embedded_redis(state, advertise_addr)
        config = ClusterConfig(redis_url=redis_url, api_url=f"{'http' if http else 'https'}://{advertise_addr}:{api_port}",
                               advertise_addr=advertise_addr, api_port=api_port, embedded_redis=embedded,
                               heartbeat=heartbeat, workers=workers, default_addr_pool=addr_pool,
                               subnet_size=subnet_size, sentinels=sentinels, redis_users=users, redis_tls=tls)
        state.save(config)
        if systemd:
            unit = SYSTEMD_UNITS / unit_name(state)
            unit.write_text(unit_text(state, parts_of(config, lb)))
            for command in (["daemon-reload"], ["enable", "--now", unit.name]):
                done = subprocess.run(["systemctl", *command], capture_output=True, text=True)
                if done.returncode != 0:
                    raise BootstrapError(f"systemctl {' '.join(command)}: {done.stderr.strip()}")
        else:
            spawn(state, "supervisor", ["supervise", "--local-node", *(f"--part={p}" for p in parts_of(config, lb))])
        if embedded:
            try:
                _wait(lambda: _redis_answers(redis_url, **replication.credentials(config, replication.MANAGER),
                                             **replication.tls_kwargs(config)),
                      10, "the embedded redis-server did not answer")
                _wait(lambda: _master_known(config), 10, "the embedded Redis Sentinel did not answer")
            except BootstrapError as e:
                stop(state)
                raise BootstrapError(f"{e}: {log_tail(state, 'redis')}\n{log_tail(state, 'sentinel')}") from None
    return config


@contextlib.contextmanager
def _machine_lock(name: str):
    with open(os.path.join(tempfile.gettempdir(), f"swarmpy-{name}.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pid(state: StateDir, name: str) -> int | None:
    """The pid a part's pid file names, if that process is still the part (a pid file a crash left
    behind may name a pid the system has since given to another program: never signal that)."""
    try:
        pid = int(state.pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_ours(pid, state, name) else None


def _is_ours(pid: int, state: StateDir, name: str) -> bool:
    try:
        if name in ("redis", "sentinel"):  # redis-server rewrites its title; it runs in its data dir
            home = state.redis_dir if name == "redis" else state.sentinel_dir
            return os.path.realpath(f"/proc/{pid}/cwd") == os.path.realpath(home)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return str(state.path).encode() in f.read().split(b"\0")
    except OSError:
        return False


def alive(pid: int | None) -> bool:
    """The process runs (a zombie does not: PID 1 of some machines never reaps orphans)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


PROCESSES = ("supervisor", "manager", "lb", "worker", "sentinel", "redis")


def running(state: StateDir) -> dict[str, int]:
    return {name: pid for name in PROCESSES if alive(pid := _pid(state, name))}


def stop(state: StateDir, timeout: float = 30) -> list[str]:
    """Stop what `init` started here: the supervisor stops its parts (the store last); a part still
    running after that (one an older swarmpy started alone) is stopped alone. Returns the parts
    that ran."""
    ran = running(state)
    unit = SYSTEMD_UNITS / unit_name(state)
    if unit.exists():  # `init --systemd`: systemd stops the supervisor (which stops its parts)
        subprocess.run(["systemctl", "disable", "--now", unit.name], capture_output=True)
        unit.unlink()
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)
    for name in PROCESSES:
        pid = _pid(state, name)
        if alive(pid):
            _terminate([pid], timeout)
    strays = leftovers(state)
    for pid in strays:
        log.warning("leave: process %d of this state dir outlived its parts; stopping it", pid)
    _terminate(strays, 5)
    return [name for name in ran if name != "supervisor"]


def _terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM, then SIGKILL to those still running after `timeout` seconds."""
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# the commands of the processes a cluster runs on a machine (`swarmpy <command> ... --state-dir DIR`)
PART_COMMANDS = (b"supervise", b"manager", b"manager-loops", b"lb", b"worker")


def leftovers(state: StateDir) -> list[int]:
    """This state dir's processes that no pid file names: a manager's control loops' process that
    hung while its manager was killed outlives it (nothing else would stop it). Only processes of
    this mount namespace (not a container's) that run a part's command with the state dir's
    absolute path; not a command a user runs, not this process nor its parents. (The worker's job
    processes and the load balancer's workers are multiprocessing children, named by no state dir:
    they die with their parent.)"""
    mine, pid = set(), os.getpid()
    while pid > 1:  # `leave` itself, and the shell or test that runs it
        mine.add(pid)
        pid = _parent(pid)
    namespace = os.readlink("/proc/self/ns/mnt")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in mine and alive(int(entry)):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                if os.readlink(f"/proc/{entry}/ns/mnt") != namespace:
                    continue
            except OSError:
                continue
            if b"swarmpy" in args and str(state.path).encode() in args and \
                    args[args.index(b"swarmpy") + 1:][:1] in ([c] for c in PART_COMMANDS):
                found.append(int(entry))
    return found


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def remove_state(state: StateDir, embedded_redis: bool) -> list[str]:
    """Remove exactly what `init` wrote in the state dir (the dir itself only when nothing else is
    in it: it may be the default /var/lib/swarmpy, which holds labs too). With a Redis of the
    user's, the vault key and SSH key stay: that store still holds what they open. Returns what
    could not go."""
    paths = [state.config_file, state.token_file, state.ca_file, state.tls_dir, state.run_dir,
             *([state.key_file, state.ssh_dir, state.redis_dir, state.sentinel_dir] if embedded_redis else [])]
    problems = []
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as e:
            problems.append(f"{path}: {e.strerror or e}")
    try:
        state.path.rmdir()
    except OSError:
        pass  # not empty: what is left is not ours
    return problems


def log_tail(state: StateDir, name: str, lines: int = 20) -> str:
    path: Path = state.run_dir / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cluster_id(state: StateDir) -> str | None:
    """The id of the cluster this machine is in, from its store (None when the store does not answer)."""
    import redis

    from swarmpy.store import Store
    try:
        config = state.load()
        return Store.from_config(config, replication.host_user(config), socket_timeout=3).cluster_info().get("id")
    except (redis.RedisError, OSError):
        return None


def noted_cluster_id(state: StateDir) -> str | None:
    """The cluster's id as this machine's load balancer noted it (for when the store is away)."""
    try:
        return (state.run_dir / "cluster-id").read_text().strip() or None
    except OSError:
        return None


def remove_local_networks(cluster_id: str, docker_socket: str = "/var/run/docker.sock") -> None:
    """What the cluster's networks made on this machine's engine and in its network namespace
    (once its stacks are gone: nothing of it runs here any more)."""
    import docker

    from swarmpy.network.host import HostShell
    from swarmpy.network.programmer import teardown

    if not cluster_id or not os.path.exists(docker_socket):
        return
    client = docker.DockerClient(base_url=f"unix://{docker_socket}", timeout=30)
    try:
        teardown(client, HostShell(None), cluster_id)
    finally:
        client.close()


def remove_local_ingress(cluster_id: str) -> None:
    """The rules of the cluster's routing mesh in this machine's kernel (see `lb/kernel.py`)."""
    from swarmpy.lb import kernel
    if shutil.which("iptables"):
        kernel.remove(cluster_id)


def remove_local_secrets(cluster_id: str) -> None:
    """The tmpfs of the cluster's secrets on this machine, and its folder."""
    from swarmpy.network.host import HostShell
    from swarmpy.worker import taskfiles
    taskfiles.remove_all(HostShell(None), cluster_id)
