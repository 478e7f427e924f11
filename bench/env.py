"""What the benchmarks run on, made once per `python -m bench` and always taken down:
a lab named `bench` (3 hosts), a swarmpy cluster managed from this machine with the
lab's hosts joined, Docker Swarm on the same lab engines, and a one-node Docker Swarm
on this machine's engine. For Swarm the test image is also tagged under a registry
name that refuses at once, so that Swarm does not wait on registry look-ups that
cannot succeed here (with `--resolve-image never`)."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from swarmpy import lab as swarmpy_lab
from tests.integration.cluster import Cluster

LAB = "bench"
ADDR_POOL = "10.64.0.0/12"  # swarmpy's networks: Docker Swarm's on the lab are 10.0.x, labs 10.100-249
IMAGE = "swarmpy/busybox:latest"
SWARM_IMAGE = "127.0.0.1:5999/busybox:latest"
LOCAL = "unix:///var/run/docker.sock"


def sh(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def swarm_stack_rm(manager: str, name: str) -> None:
    """`docker stack rm`, again until it has all gone: Swarm refuses to remove a stack's
    network while the stack's tasks are still going ("network ... is in use by task")."""
    for _ in range(60):
        done = sh("docker", "-H", manager, "stack", "rm", name, check=False)
        if done.returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError(f"docker stack rm {name}: {done.stderr.strip() or done.stdout.strip()}")


@functools.cache
def swarm_detach() -> tuple[str, ...]:
    """`docker stack deploy` returns at once; since Docker 26 only when told `--detach=true`."""
    help_text = sh("docker", "stack", "deploy", "--help", check=False).stdout
    return ("--detach=true",) if "--detach" in help_text else ()


def ensure_packages(*packages: str) -> None:
    """Debian packages a figure needs (wrk, haproxy, ...), installed when missing."""
    missing = [p for p in packages
               if "ok installed" not in sh("dpkg-query", "-W", "-f=${Status}", p, check=False).stdout]
    if missing:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        sh("apt-get", "update", "-qq", check=False, env=env)
        sh("apt-get", "install", "-y", "-qq", *missing, env=env)


class Env:
    def __init__(self, stack: contextlib.ExitStack, images: tuple[str, ...] = ()):
        self._stack = stack
        self.images = images
        self._lab: swarmpy_lab.Lab | None = None
        self._cluster: Cluster | None = None
        self._lab_swarm: str | None = None
        self._local_swarm = False
        self.engines: dict[str, docker.DockerClient] = {}

    # ---------------------------------------------------------------- parts, made on first use

    @property
    def lab(self) -> swarmpy_lab.Lab:
        if self._lab is None:
            swarmpy_lab.build_image()
            swarmpy_lab.down(LAB)
            self._stack.callback(swarmpy_lab.down, LAB)
            self._lab = swarmpy_lab.up(name=LAB, nodes=3, images=self.images)
        return self._lab

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            state = Path(tempfile.mkdtemp(prefix="swarmpy-bench-"))
            self._stack.callback(shutil.rmtree, state, True)
            # an address pool of its own, as two orchestrators on the same engines need: Docker
            # Swarm's there is 10.0.0.0/8, the default of both. (A full run stopped when a network of
            # swarmpy's could not be made on node2, "Pool overlaps", right after Swarm's figure.)
            cluster = Cluster(self.lab, state, addr_pool=ADDR_POOL)

            def stop(exc_type, exc, tb) -> bool:
                # a figure that failed leaves the cluster's logs behind (the state dir goes)
                kept = state.with_name(f"{state.name}-logs") if exc_type is not None else None
                if kept is not None:
                    self._keep_engines(kept)
                cluster.stop(keep_logs=kept)
                if kept is not None:
                    print(f"bench: the cluster's logs are kept in {kept}", file=sys.stderr)
                return False
            self._stack.push(stop)
            cluster.start()
            self._cluster = cluster
        return self._cluster

    def _keep_engines(self, folder: Path) -> None:
        """What each lab engine had when a figure failed: its networks (with their endpoints) and
        its containers, as the engine's API gives them."""
        folder.mkdir(parents=True, exist_ok=True)
        for node in self.lab.nodes:
            try:
                api = self.engine(node.docker_host).api
                seen = {"networks": [api.inspect_network(n["Id"]) for n in api.networks()],
                        "containers": api.containers(all=True)}
                (folder / f"engine-{node.name}.json").write_text(json.dumps(seen, indent=1))
            except Exception as e:  # noqa: BLE001 - what can be kept is kept
                print(f"bench: cannot read {node.name}'s engine: {e}", file=sys.stderr)

    @property
    def lab_swarm(self) -> str:
        """Docker Swarm over the lab's engines (node1 manages); returns the manager's docker host."""
        if self._lab_swarm is None:
            hosts = [n.docker_host for n in self.lab.nodes]
            self._stack.callback(leave_swarm, hosts)
            join_swarm(hosts, self.lab.nodes[0].address)
            self._lab_swarm = hosts[0]
        return self._lab_swarm

    def remake_lab_swarm(self) -> None:
        """Docker Swarm over the lab's engines made anew (after a failure left it without its managers)."""
        join_swarm([n.docker_host for n in self.lab.nodes], self.lab.nodes[0].address)
        self._lab_swarm = self.lab.nodes[0].docker_host

    @property
    def local_swarm(self) -> str:
        """A one-node Docker Swarm on this machine's engine."""
        if not self._local_swarm:
            self._stack.callback(leave_swarm, [LOCAL])
            join_swarm([LOCAL], "127.0.0.1")
            self._local_swarm = True
        return LOCAL

    def engine(self, host: str) -> docker.DockerClient:
        if host not in self.engines:
            self.engines[host] = docker.DockerClient(base_url=host, version="1.41", timeout=120)
        return self.engines[host]

    @property
    def lab_hosts(self) -> list[str]:
        return [n.docker_host for n in self.lab.nodes]


def join_swarm(hosts: list[str], manager_address: str) -> None:
    leave_swarm(hosts)
    sh("docker", "-H", hosts[0], "swarm", "init", "--advertise-addr", manager_address)
    token = sh("docker", "-H", hosts[0], "swarm", "join-token", "-q", "worker").stdout.strip()
    for host in hosts[1:]:
        sh("docker", "-H", host, "swarm", "join", "--token", token, f"{manager_address}:2377")
    for host in hosts:
        sh("docker", "-H", host, "tag", IMAGE, SWARM_IMAGE)


def leave_swarm(hosts: list[str]) -> None:
    for host in reversed(hosts):
        sh("docker", "-H", host, "swarm", "leave", "--force", check=False)


@contextlib.contextmanager
def environment(images: tuple[str, ...] = ()):
    with contextlib.ExitStack() as stack:
        yield Env(stack, images)
