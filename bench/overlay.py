"""Figure 8, cluster networks: a task on node1 calls an nginx task on node2 with wrk, three ways,
alternating: by the service's name (its VIP, DNATed on node1), by the task's own address
(`tasks.<name>`), both over the VXLAN overlay, and node1 to node2 with no overlay at all (the
physical path: the lab's link to a host-mode port of the same task), and Docker Swarm's overlay
between the same two nodes. Then the time from a new task's start until tasks on two other
nodes both resolve it by name and reach it, on both."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import BenchError, Figure, wait_until
from bench.env import Env, ensure_packages, sh
from bench.mesh import parse_wrk

NGINX, WRK, BUSYBOX = "swarmpy/nginx:latest", "swarmpy/wrk:latest", "swarmpy/busybox:latest"
HOST_PORT = 18810
SWARM_IMAGE_TAGS = {BUSYBOX: "127.0.0.1:5999/busybox:latest", NGINX: "127.0.0.1:5999/nginx:latest",
                    WRK: "127.0.0.1:5999/wrk:latest"}

STACK = f"""
services:
  srv:
    image: {NGINX}
    ports: [{{target: 80, published: {HOST_PORT}, mode: host}}]
    stop_grace_period: 1s
    deploy:
      placement: {{constraints: [node.hostname==node2]}}
  client:
    image: {WRK}
    stop_grace_period: 1s
    deploy:
      placement: {{constraints: [node.hostname==node1]}}
  watcher:
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      placement: {{constraints: [node.hostname==node2]}}
  probe:
    image: {NGINX}
    stop_grace_period: 1s
    deploy:
      replicas: 0
      placement: {{constraints: [node.hostname==node3]}}
"""


def prepare() -> None:
    """The load generator's image, before the lab is made (its nodes get it)."""
    from swarmpy.lab import images as lab_images
    ensure_packages("wrk")
    lab_images.build_preset("wrk")


def _container(env: Env, node: int, label: str):
    client = env.engine(env.lab_hosts[node - 1])
    found = client.containers.list(filters={"label": label})
    if not found:
        raise BenchError(f"no container with {label} on node{node}")
    return found[0]


def _wrk_in(container, url: str, duration: int, connections: int, threads: int) -> dict:
    code, out = container.exec_run(["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration}s", url])
    if code != 0:
        raise BenchError(f"wrk to {url} in {container.name}: {out.decode(errors='replace')}")
    return parse_wrk(out.decode())


def _wrk_on_host(netns: str, url: str, duration: int, connections: int, threads: int) -> dict:
    done = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "wrk", "--latency", f"-t{threads}",
                           f"-c{connections}", f"-d{duration}s", url], capture_output=True, text=True,
                          timeout=duration + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk to {url} from {netns}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def _reached(watchers, name: str) -> bool:
    """Every watcher resolves `name` and gets an answer from it (busybox is in both images)."""
    return all(w.exec_run(["/bin/busybox", "wget", "-q", "-O", "/dev/null", f"http://{name}/"])[0] == 0
               for w in watchers)


def _started_at(container) -> float:
    container.reload()
    stamp = container.attrs["State"]["StartedAt"]  # RFC 3339 with nanoseconds
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


def _time_to_reachable(start, stop, new_container, watchers, name: str) -> float:
    """Start one task (on node3) and time from its container's start until every watcher reaches it by name."""
    stop()
    start()
    wait_until(new_container, 60, f"the new {name} task")
    container = new_container()
    wait_until(lambda: _reached(watchers, name), 30, f"{name} reachable from every watcher", 0.01)
    return time.time() - _started_at(container)


def run(env: Env, runs: int = 3, duration: int = 8, connections: int = 64, threads: int = 2) -> list[Figure]:
    cluster, lab = env.cluster, env.lab
    results: dict[str, list[dict]] = {"vip": [], "task": [], "physical": [], "swarm": []}
    reach: dict[str, list[float]] = {"swarmpy": [], "swarm": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overlay.yml"
        path.write_text(STACK)
        cluster.cli("stack", "deploy", "-c", str(path), "ovl")
        try:
            client = _container(env, 1, "com.swarmpy.service.name=ovl_client")
            srv = _container(env, 2, "com.swarmpy.service.name=ovl_srv")
            task_ip = next(iter(srv.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
            urls = {"vip": ("client", "http://srv/"), "task": ("client", f"http://{task_ip}/"),
                    "physical": ("host", f"http://{lab.node('node2').address}:{HOST_PORT}/")}

            def measure(name: str, seconds: int) -> dict:
                where, url = urls[name]
                if where == "client":
                    return _wrk_in(client, url, seconds, connections, threads)
                return _wrk_on_host(lab.node("node1").netns, url, seconds, connections, threads)
            for name in urls:
                measure(name, 1)  # warm up
            for _ in range(runs):
                for name in urls:
                    results[name].append(measure(name, duration))

            watchers = [client, _container(env, 2, "com.swarmpy.service.name=ovl_watcher")]
            for _ in range(runs):
                reach["swarmpy"].append(_time_to_reachable(
                    lambda: cluster.cli("service", "scale", "ovl_probe=1", "--detach"),
                    lambda: (cluster.cli("service", "scale", "ovl_probe=0"),
                             wait_until(lambda: not _probe(env, "com.swarmpy.service.name=ovl_probe"), 30,
                                        "the probe gone")),
                    lambda: _probe(env, "com.swarmpy.service.name=ovl_probe"), watchers, "tasks.probe"))
        finally:
            cluster.cli("stack", "rm", "ovl", timeout=300)
    results["swarm"], reach["swarm"] = swarm_figures(env, runs, duration, connections, threads)
    for name, rows in results.items():
        if any(r["errors"] for r in rows):
            raise BenchError(f"{name}: requests failed: {json.dumps(rows)}")

    def column(name, key):
        return [r[key] for r in results[name]]

    load = (f"wrk -t{threads} -c{connections} -d{duration}s in a task on node1, over keep-alive connections, "
            "to one nginx task on node2")
    return [
        Figure("overlay: requests/s by VIP name", "req/s", "the task's address", column("vip", "rps"),
               column("task", "rps"), aim=">= 0.9x", note=load),
        Figure("overlay: p99 by VIP name", "ms", "the task's address", column("vip", "p99"), column("task", "p99")),
        Figure("overlay: requests/s to a task's address", "req/s", "node to node, no overlay",
               column("task", "rps"), column("physical", "rps"), aim=">= 0.8x",
               note="the reference: wrk in node1's namespace to the same task's host-mode port on node2"),
        Figure("overlay: p99 to a task's address", "ms", "node to node, no overlay", column("task", "p99"),
               column("physical", "p99")),
        Figure("overlay: requests/s, swarmpy vs Swarm", "req/s", "Docker Swarm overlay", column("task", "rps"),
               column("swarm", "rps"), note="to a task's address, wrk in a task on node1 in both"),
        Figure("overlay: p99, swarmpy vs Swarm", "ms", "Docker Swarm overlay", column("task", "p99"),
               column("swarm", "p99")),
        Figure("overlay: new task reachable by name", "s", "Docker Swarm overlay", reach["swarmpy"], reach["swarm"],
               aim="< 1 s",
               note="from the new task's container start (its engine's StartedAt) until tasks on two other "
                    "nodes both resolve tasks.<name> and get an HTTP answer from it"),
    ]


def _probe(env: Env, label: str):
    found = env.engine(env.lab_hosts[2]).containers.list(filters={"label": label})
    return found[0] if found else None


def swarm_figures(env: Env, runs: int, duration: int, connections: int, threads: int) -> tuple[list[dict], list[float]]:
    """The same on Docker Swarm's overlay, over the same engines: wrk in a task on node1 to an nginx
    task's address on node2, and a new task on node3 reached by watchers on node1 and node2 (dnsrr
    everywhere: Swarm's VIPs need IPVS, which this kernel lacks)."""
    manager = env.lab_swarm
    for host in env.lab_hosts:
        for image, tag in SWARM_IMAGE_TAGS.items():
            sh("docker", "-H", host, "tag", image, tag)
    docker = ["docker", "-H", manager]
    sh(*docker, "network", "create", "-d", "overlay", "--attachable", "ovlbench")
    services = {"w1": ("node1", WRK, []), "w2": ("node2", BUSYBOX, ["sleep", "3600"]), "srv": ("node2", NGINX, []),
                "probe": ("node3", NGINX, [])}
    try:
        for name, (node, image, command) in services.items():
            sh(*docker, "service", "create", "--detach", "--name", name, "--network", "ovlbench",
               "--endpoint-mode", "dnsrr", "--replicas", "0" if name == "probe" else "1",
               "--constraint", f"node.hostname=={node}", SWARM_IMAGE_TAGS[image], *command)

        def task(name: str):
            node = int(services[name][0][-1])
            found = env.engine(env.lab_hosts[node - 1]).containers.list(
                filters={"label": f"com.docker.swarm.service.name={name}"})
            return found[0] if found else None
        watchers = []
        for name in ("w1", "w2", "srv"):
            wait_until(lambda n=name: task(n), 60, f"Swarm's {name}")
            watchers.append(task(name))
        srv_ip = next(iter(watchers.pop().attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        _wrk_in(watchers[0], f"http://{srv_ip}/", 1, connections, threads)  # warm up
        load = [_wrk_in(watchers[0], f"http://{srv_ip}/", duration, connections, threads) for _ in range(runs)]
        reach = []
        for _ in range(runs):
            reach.append(_time_to_reachable(
                lambda: sh(*docker, "service", "scale", "--detach", "probe=1"),
                lambda: (sh(*docker, "service", "scale", "--detach", "probe=0"),
                         wait_until(lambda: not task("probe"), 60, "Swarm's probe gone")),
                lambda: task("probe"), watchers, "tasks.probe"))
        return load, reach
    finally:
        for name in services:
            sh(*docker, "service", "rm", name, check=False)
        for _ in range(60):
            if sh(*docker, "network", "rm", "ovlbench", check=False).returncode == 0:
                break
            time.sleep(1)
