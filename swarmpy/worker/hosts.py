"""Starting and stopping swarmpy's own processes on a node over SSH: a manager
(with its load balancer and worker) when the node is promoted, a load balancer
alone when asked. One supervisor on the node runs them and restarts what dies.

The node gets a state dir of its own (`/var/lib/swarmpy/node-<id>`, or under
`$SWARMPY_STATE_ROOT` when the host's sessions set it, as the lab's nodes do:
they share this machine's filesystem) with the cluster's config pointed at the
same Redis, its token and its key, written over SFTP with mode 0600 and never
put on a command line.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from urllib.parse import urlparse

from swarmpy import pki
from swarmpy.model import Node
from swarmpy.settings import StateDir
from swarmpy.store import replication
from swarmpy.worker.context import current
from swarmpy.worker.engine import EngineError, SSHTarget, run_command, ssh_connect, write_files

REMOTE_ROOT = "/var/lib/swarmpy"
SUPERVISOR = "supervisor"


def remote_state_dir(session, node: Node) -> str:
    code, out, err = run_command(session, f'echo "${{SWARMPY_STATE_ROOT:-{REMOTE_ROOT}}}"')
    root = out.strip()
    if code != 0 or not root.startswith("/"):
        raise HostError(f"cannot tell where swarmpy's state goes on this host: {err.strip() or out.strip()}")
    return f"{root}/node-{node.id}"


def _session(node: Node):
    ctx = current()
    target = SSHTarget(node.address, node.ssh_port, node.ssh_user or "root", node.host_key, ctx.identity_of(node))
    session, _ = ssh_connect(target)
    return session


def _start(session, state_dir: str, name: str, args: str) -> tuple[int, str, str]:
    log, pid = f"{state_dir}/run/{name}.log", f"{state_dir}/run/{name}.pid"
    command = (f"mkdir -p {state_dir}/run && "
               f"if [ -f {pid} ] && kill -0 $(cat {pid}) 2>/dev/null; then echo already; exit 0; fi; "
               f"command -v swarmpy >/dev/null || {{ echo 'swarmpy is not installed on this host' >&2; exit 3; }}; "
               f"setsid nohup swarmpy {args} --state-dir {state_dir} >{log} 2>&1 < /dev/null & echo $! > {pid}")
    return run_command(session, command)


def _stop(session, state_dir: str, name: str, later: bool = False, remove_state: bool = False) -> None:
    """SIGTERM (a supervisor stops its parts), then SIGKILL; only a process of this state dir
    (a pid file may outlive its process, and its pid go to another)."""
    pid = f"{state_dir}/run/{name}.pid"
    script = (f"if [ -f {pid} ]; then p=$(cat {pid}); "
              f"if tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qxF {shlex.quote(state_dir)}; then "
              f"kill $p 2>/dev/null; "
              f"for i in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.2; done; "
              f"kill -9 $p 2>/dev/null; fi; rm -f {pid}; fi")
    if remove_state:  # what promote wrote there: the cluster's keys, token, and Redis password
        script += f"; rm -rf {shlex.quote(state_dir)}"
    if later:
        script = f"setsid nohup sh -c {shlex.quote('sleep 2; ' + script)} >/dev/null 2>&1 < /dev/null &"
    run_command(session, script, timeout=20)


def _write_state(session, node: Node, state_dir: str, with_api: bool) -> dict:
    ctx = current()
    if ctx.state is None or not ctx.state.exists():
        raise EngineError("this worker has no state dir to copy the cluster's settings from", transient=False)
    config = ctx.state.load()
    redis_host = urlparse(config.redis_url).hostname
    if redis_host in ("127.0.0.1", "localhost", "::1"):
        raise EngineError(f"the cluster's Redis listens on {redis_host}, which {node.hostname} cannot reach: "
                          "start the cluster with --advertise-addr (or --redis URL) reachable from the nodes",
                          transient=False)
    remote = asdict(config)
    remote.update(advertise_addr=node.address, embedded_redis=False,
                  api_url=_api_url(config, node) if with_api else config.api_url)
    files = {}
    if with_api:  # a manager's; a host that only balances needs neither
        files = {f"{state_dir}/token": (ctx.state.token_file.read_bytes(), 0o600),
                 f"{state_dir}/cluster.key": (ctx.state.key_file.read_bytes(), 0o600)}
    else:  # ... and logs in to the store as a load balancer only
        remote["redis_users"] = {name: password for name, password in config.redis_users.items()
                                 if name in (replication.LB, replication.SENTINEL_ACCESS)}
    if ctx.state.ca_file.exists():  # the CA: its certificate for clients, its key for a manager's own
        files[f"{state_dir}/ca.crt"] = (ctx.state.ca_file.read_bytes(), 0o644)
        if with_api:
            files[f"{state_dir}/tls/ca.key"] = ((ctx.state.tls_dir / "ca.key").read_bytes(), 0o600)
    if config.redis_tls:  # the host's own certificate for the store, as server and client
        tls = StateDir(state_dir).store_tls()
        cert, key = pki.issue_pem(ctx.state.ca_file, ctx.state.tls_dir / "ca.key", [node.address, "127.0.0.1"])
        files.update({tls["cert"]: (cert, 0o644), tls["key"]: (key, 0o600)})
        remote["redis_tls"] = tls
    if with_api and config.sentinels:  # a manager: a replica of the store, and a Sentinel
        files.update(_store_files(config, node, state_dir))
        remote["sentinels"] = [*config.sentinels, _sentinel_of(config, node)]
    files[f"{state_dir}/cluster.json"] = (json.dumps(remote, indent=2).encode(), 0o600)
    own_key = ctx.state.ssh_dir / "id_ed25519"
    if with_api and own_key.exists():  # a manager's, to reach the nodes
        files[f"{state_dir}/ssh/id_ed25519"] = (own_key.read_bytes(), 0o600)
    write_files(session, files)
    return remote


def _api_url(config, node: Node) -> str:
    return f"{urlparse(config.api_url).scheme}://{node.address}:{config.api_port}"


def _sentinel_of(config, node: Node) -> str:
    return f"{node.address}:{replication.address(config.sentinels[0])[1]}"


def _store_files(config, node: Node, state_dir: str) -> dict[str, tuple[bytes, int]]:
    """A replica of the master (on the master's port) and a Sentinel (on the first Sentinel's port)."""
    master = replication.master_address(config)
    binds = ["127.0.0.1", node.address]
    known = len(current().store.sentinels()) + 1
    tls = StateDir(state_dir).store_tls() if config.redis_tls else {}
    redis_conf = replication.redis_conf(master[1], binds, config.redis_users, tls, f"{state_dir}/redis",
                                        f"{state_dir}/run/redis.log", announce=node.address, replica_of=master)
    sentinel_conf = replication.sentinel_conf(
        replication.address(_sentinel_of(config, node))[1], binds, config.redis_users, tls, f"{state_dir}/sentinel",
        f"{state_dir}/run/sentinel.log", announce=node.address, master=master, sentinel_count=known)
    return {f"{state_dir}/redis/redis.conf": (redis_conf.encode(), 0o600),
            f"{state_dir}/sentinel/sentinel.conf": (sentinel_conf.encode(), 0o600)}


class HostError(Exception):
    pass


def _on_host(node_id: str, steps) -> dict:
    """Run `steps(session, node, state_dir)` over SSH; its answer, or {"ok": False, "error": why}."""
    node = current().store.get_node(node_id)
    try:
        session = _session(node)
        try:
            return {"ok": True, **(steps(session, node, remote_state_dir(session, node)) or {})}
        finally:
            session.close()
    except (EngineError, HostError) as e:
        return {"ok": False, "error": str(e)}


def _start_checked(session, state_dir: str, name: str, args: str) -> None:
    code, _, err = _start(session, state_dir, name, args)
    if code != 0:
        raise HostError(err.strip() or f"starting swarmpy {name} failed ({code})")


def _supervise(node: Node, *parts: str) -> str:
    return " ".join(["supervise", *(f"--part {p}" for p in parts), "--node-id", shlex.quote(node.id)])


def _parts_running(session, state_dir: str) -> str:
    """The command line of the node's supervisor, if one runs ('' when none does)."""
    pid = f"{state_dir}/run/{SUPERVISOR}.pid"
    _, out, _ = run_command(session, f"[ -f {pid} ] && tr '\\0' ' ' < /proc/$(cat {pid})/cmdline 2>/dev/null; true")
    return out


def start_manager(node_id: str) -> dict:
    def steps(session, node, state_dir):
        running = _parts_running(session, state_dir)
        if "--part manager" in running:
            return {"api_url": _api_url(current().state.load(), node),
                    "log": f"{state_dir}/run/manager.log"}
        remote = _write_state(session, node, state_dir, with_api=True)
        _stop(session, state_dir, SUPERVISOR)  # a load balancer alone, say: the manager's comes with it
        store_parts = ("redis", "sentinel") if remote["sentinels"] else ()
        _start_checked(session, state_dir, SUPERVISOR, _supervise(node, *store_parts, "manager", "lb", "worker"))
        return {"api_url": remote["api_url"], "log": f"{state_dir}/run/manager.log",
                "sentinel": _sentinel_of(current().state.load(), node) if remote["sentinels"] else None}
    return _on_host(node_id, steps)


def stop_manager(node_id: str) -> dict:
    """Stop the node's manager and remove the state promote wrote (a demoted node keeps no keys)."""
    # this job may run in that very worker: it all stops a moment after the job has answered
    return _on_host(node_id, lambda session, node, state_dir: _stop(session, state_dir, SUPERVISOR, later=True,
                                                                     remove_state=True))


def start_lb(node_id: str) -> dict:
    def steps(session, node, state_dir):
        if "--part lb" in _parts_running(session, state_dir):
            return
        _write_state(session, node, state_dir, with_api=False)
        _start_checked(session, state_dir, SUPERVISOR, _supervise(node, "lb"))
    return _on_host(node_id, steps)


def stop_lb(node_id: str) -> dict:
    def steps(session, node, state_dir):
        if "--part manager" not in _parts_running(session, state_dir):  # a manager keeps its own
            _stop(session, state_dir, SUPERVISOR)
    return _on_host(node_id, steps)
