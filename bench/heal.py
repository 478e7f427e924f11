"""Figures 3 and 4: healing. A task's container killed, and a node's engine killed
(SIGKILL), on the 3-node lab; time until the engines list all replicas running
again, against Docker Swarm on the same engines with the same settings."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import BenchError, Figure, wait_until
from bench.converge import gone, running
from bench.env import IMAGE, SWARM_IMAGE, Env, sh, swarm_stack_rm
from swarmpy.lab import engine as lab_engine

STACK = """
services:
  web:
    image: {image}
    command: ["sh", "-c", "exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      restart_policy:
        delay: {delay}
      placement:
        constraints: [node.platform.os==linux]
"""

SWARMPY, SWARM = "com.swarmpy.stack=heal", "com.docker.stack.namespace=heal"


def deploy(env: Env, system: str, path: Path) -> None:
    if system == "swarmpy":
        env.cluster.cli("stack", "deploy", "-c", str(path), "heal", timeout=300)
    else:
        sh("docker", "-H", env.lab_swarm, "stack", "deploy", "--resolve-image", "never", "-c", str(path), "heal")


def remove(env: Env, system: str, hosts: list[str]) -> None:
    if system == "swarmpy":
        env.cluster.cli("stack", "rm", "heal", timeout=300)
    else:
        swarm_stack_rm(env.lab_swarm, "heal")
    wait_until(lambda: gone(env, hosts, SWARMPY if system == "swarmpy" else SWARM), 120, "containers to go", 0.2)


def stack_files(tmp: Path, replicas: int, delay: str) -> dict[str, Path]:
    files = {}
    for system, image in (("swarmpy", IMAGE), ("swarm", SWARM_IMAGE)):
        files[system] = tmp / f"{system}.yml"
        files[system].write_text(STACK.format(image=image, replicas=replicas, delay=delay))
    return files


def time_container_kill(env: Env, system: str, replicas: int) -> float:
    hosts = env.lab_hosts
    label = SWARMPY if system == "swarmpy" else SWARM
    wait_until(lambda: running(env, hosts, label) == replicas, 120, "all replicas before the kill")
    api = env.engine(hosts[1]).api
    victim = api.containers(filters={"label": label, "status": "running"})[0]["Id"]
    start = time.perf_counter()
    api.kill(victim)

    def healed() -> bool:
        ids = [c["Id"] for h in hosts for c in env.engine(h).api.containers(filters={"label": label,
                                                                                     "status": "running"})]
        return len(ids) == replicas and victim not in ids
    return wait_until(healed, 120, f"{system} to replace the killed container") - start


def self_heal(env: Env, runs: int = 3, replicas: int = 6) -> list[Figure]:
    figures = []
    for delay, aim in (("5s", "<= 1.0x"), ("0s", "< 1 s")):
        times: dict[str, list[float]] = {"swarmpy": [], "swarm": []}
        with tempfile.TemporaryDirectory() as tmp:
            files = stack_files(Path(tmp), replicas, delay)
            for system in ("swarmpy", "swarm"):
                deploy(env, system, files[system])
                try:
                    for _ in range(runs):
                        times[system].append(time_container_kill(env, system, replicas))
                finally:
                    remove(env, system, env.lab_hosts)
        figures.append(Figure(f"self-heal, restart delay {delay}", "s", f"Docker Swarm, delay {delay}",
                              times["swarmpy"], times["swarm"], aim=aim))
    return figures


def node_status(env: Env, system: str, name: str) -> str:
    if system == "swarmpy":
        return next((n["status"] for n in env.cluster.json("node", "ls") if n["hostname"] == name), "")
    out = sh("docker", "-H", env.lab_swarm, "node", "ls", "--format", "{{.Hostname}} {{.Status}}", check=False)
    return next((line.split()[1].lower() for line in out.stdout.splitlines() if line.split()[0] == name), "")


def time_node_loss(env: Env, system: str, path: Path, replicas: int) -> tuple[float, float]:
    lab = env.lab
    victim = lab.node("node3")
    survivors = [n.docker_host for n in lab.nodes if n.name != "node3"]
    label = SWARMPY if system == "swarmpy" else SWARM
    deploy(env, system, path)
    wait_until(lambda: running(env, env.lab_hosts, label) == replicas, 120, "all replicas before the loss")
    if not running(env, [victim.docker_host], label):
        raise BenchError(f"{system} placed nothing on node3: nothing to lose")
    start = time.perf_counter()
    lab_engine.kill(victim)
    marked = None
    while True:
        now = time.perf_counter()
        if marked is None and node_status(env, system, "node3") == "down":
            marked = now - start
        if running(env, survivors, label) == replicas:
            back = now - start
            break
        if now - start > 180:
            raise BenchError(f"{system}: replicas not back on the other nodes within 180 s")
        time.sleep(0.05)
    if marked is None:
        marked = wait_until(lambda: node_status(env, system, "node3") == "down", 120, "node3 down") - start
    lab_engine.start(lab, victim)
    lab_engine.wait_ready(victim)
    wait_until(lambda: node_status(env, system, "node3") == "ready", 120, "node3 back", 0.2)
    remove(env, system, env.lab_hosts)
    return marked, back


def node_loss(env: Env, runs: int = 3, replicas: int = 30) -> list[Figure]:
    down: dict[str, list[float]] = {"swarmpy": [], "swarm": []}
    back: dict[str, list[float]] = {"swarmpy": [], "swarm": []}
    with tempfile.TemporaryDirectory() as tmp:
        files = stack_files(Path(tmp), replicas, "5s")
        env.lab_swarm  # noqa: B018 (made before the first kill)
        for _ in range(runs):
            for system in ("swarmpy", "swarm"):
                marked, restored = time_node_loss(env, system, files[system], replicas)
                down[system].append(marked)
                back[system].append(restored)
    note = "node3's dockerd SIGKILLed; swarmpy's heartbeat 5 s (Swarm's default), confirmed at once when the engine's event stream breaks"
    return [Figure("node loss: marked down", "s", "Docker Swarm, defaults", down["swarmpy"], down["swarm"],
                   note=note),
            Figure(f"node loss: {replicas} replicas back", "s", "Docker Swarm, defaults", back["swarmpy"],
                   back["swarm"], aim="<= 0.6x")]
