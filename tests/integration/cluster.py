"""A swarmpy cluster for the integration tests, driven through the CLI as a user types it.

The manager runs on this machine (its own engine is a node, drained so that
the tests' tasks land on the lab's hosts); the lab's nodes join over SSH.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker

from swarmpy import lab as swarmpy_lab

ZONES = {"node1": "a", "node2": "b", "node3": "b"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float = 30, interval: float = 0.2, what="condition"):
    """Poll `check()` until it returns something truthy; fail with `what` after `timeout` seconds
    (`what` may be a function: what it says then is in the failure)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what} "
                         f"(last: {last!r})")


class Cluster:
    def __init__(self, lab: swarmpy_lab.Lab, state_dir: Path, addr_pool: str | None = None):
        self.lab, self.state_dir, self.addr_pool = lab, state_dir, addr_pool
        self.api_port = free_port()
        self.env = {**os.environ, "SWARMPY_STATE_DIR": str(state_dir)}
        self.env.pop("SWARMPY_HOST", None)
        self._engines: dict[str, docker.DockerClient] = {}

    # ---------------------------------------------------------------- the CLI

    def cli(self, *args: str, check: bool = True, timeout: float = 300, host: str | None = None,
            input: str | None = None, token: str | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if host:
            env["SWARMPY_HOST"] = host
        if token:
            env["SWARMPY_TOKEN"] = token
        done = subprocess.run([sys.executable, "-m", "swarmpy", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"swarmpy {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def json(self, *args: str, host: str | None = None):
        return json.loads(self.cli(*args, "--format", "json", host=host).stdout)

    def deploy(self, path: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("stack", "deploy", "-c", str(path), name, *extra)

    # ---------------------------------------------------------------- set-up

    def start(self) -> None:
        self.cli("init", "--advertise-addr", self.lab.host_address, "--api-port", str(self.api_port),
                 *(("--default-addr-pool", self.addr_pool) if self.addr_pool else ()))
        for node in self.lab.nodes[:3]:
            self.add_lab_node(self.lab, node, zone=ZONES[node.name])
        local = next(n for n in self.json("node", "ls") if n["role"] == "manager")
        self.local_node = local["hostname"]
        self.cli("node", "update", "--availability", "drain", self.local_node)
        wait_for(lambda: all(n["status"] == "ready" for n in self.json("node", "ls")), 30, what="nodes ready")

    def add_lab_node(self, lab: swarmpy_lab.Lab, node, zone: str | None = None) -> None:
        labels = ["--label", f"zone={zone}"] if zone else []
        self.cli("node", "add", node.name, "--ssh", f"root@{node.address}", "--identity", lab.identity,
                 "--known-hosts", lab.known_hosts, *labels)

    def stop(self, keep_logs: Path | None = None) -> None:
        if keep_logs is not None:  # `leave` removes the state dir: keep the processes' logs for a post-mortem
            keep_logs.mkdir(parents=True, exist_ok=True)
            for log in (self.state_dir / "run").glob("*.log"):
                shutil.copy(log, keep_logs / log.name)
        self.cli("leave", "--remove-stacks", "--force", check=False, timeout=180)
        for client in self._engines.values():
            client.close()

    @property
    def cluster_id(self) -> str:
        from swarmpy.settings import StateDir
        from swarmpy.store import replication
        store = replication.client(StateDir(self.state_dir).load())
        try:
            return store.hget("swarmpy:cluster", "id")
        finally:
            store.close()

    # ---------------------------------------------------------------- what the hosts say

    def engine(self, node_name: str) -> docker.DockerClient:
        if node_name not in self._engines:
            self._engines[node_name] = docker.DockerClient(base_url=self.lab.node(node_name).docker_host)
        return self._engines[node_name]

    def listed(self, stack: str, nodes=("node1", "node2", "node3"), running_only: bool = True) -> list[dict]:
        """The engines' own listing of a stack's containers (one call per node: no race with removals)."""
        return [dict(c, node=name) for name in nodes
                for c in self.engine(name).api.containers(all=not running_only,
                                                          filters={"label": f"com.swarmpy.stack={stack}"})]

    def containers(self, stack: str, running_only: bool = True, nodes=("node1", "node2", "node3")) -> dict:
        """Container names of a stack per lab node, as the engines list them."""
        out = {name: [] for name in nodes}
        for c in self.listed(stack, nodes, running_only):
            out[c["node"]].append(c["Names"][0].lstrip("/"))
        return {name: sorted(names) for name, names in out.items()}

    def running(self, stack: str, service: str | None = None, nodes=("node1", "node2", "node3")) -> dict[str, int]:
        prefix = f"{stack}_{service}." if service else ""
        return {n: sum(1 for c in names if c.startswith(prefix))
                for n, names in self.containers(stack, nodes=nodes).items()}

    def services(self, stack: str) -> dict[str, dict]:
        return {s["name"]: s for s in self.json("stack", "services", stack)}

    def tasks(self, service: str) -> list[dict]:
        return self.json("service", "ps", service)

    def write_stack(self, tmp_path: Path, text: str, name: str = "stack.yml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
