"""Figures 1 and 2: from `stack deploy` to all replicas running, on one node (this
machine's engine) and on the 3-node lab, against Docker Swarm's `docker stack deploy`
and the raw Docker API creating and starting the same containers with the best
parallelism. Timing starts when the command starts and stops when the engines
themselves list every container running."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
from docker.types import IPAMConfig, IPAMPool

from bench.common import BenchError, Figure, wait_until
from bench.env import IMAGE, SWARM_IMAGE, Env, sh, swarm_detach, swarm_stack_rm

STACK = """
services:
  web:
    image: {image}
    command: ["sh", "-c", "exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    deploy:
      replicas: {replicas}
      placement:
        constraints: [{constraint}]
"""

RAW_LABEL = "swarmpy.bench.raw"


def running(env: Env, hosts: list[str], label: str) -> int:
    return sum(len(env.engine(h).api.containers(filters={"label": label, "status": "running"})) for h in hosts)


def gone(env: Env, hosts: list[str], label: str) -> bool:
    return all(not env.engine(h).api.containers(all=True, filters={"label": label}) for h in hosts)


def stack_file(tmp: Path, name: str, image: str, replicas: int, constraint: str) -> Path:
    path = tmp / f"{name}.yml"
    path.write_text(STACK.format(image=image, replicas=replicas, constraint=constraint))
    return path


def time_swarmpy(env: Env, hosts: list[str], path: Path, replicas: int) -> float:
    label = "com.swarmpy.stack=conv"
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "swarmpy", "stack", "deploy", "--detach", "-c", str(path), "conv"],
                            env=env.cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = wait_until(lambda: running(env, hosts, label) >= replicas, 300, "swarmpy's replicas") - start
    proc.wait(30)
    env.cluster.cli("stack", "rm", "conv", timeout=300)
    wait_until(lambda: gone(env, hosts, label), 120, "swarmpy's containers to go", 0.2)
    return took


def time_swarm(env: Env, manager: str, hosts: list[str], path: Path, replicas: int) -> float:
    label = "com.docker.stack.namespace=conv"
    start = time.perf_counter()
    sh("docker", "-H", manager, "stack", "deploy", "--resolve-image", "never", *swarm_detach(), "-c", str(path),
       "conv")
    try:
        took = wait_until(lambda: running(env, hosts, label) >= replicas, 300, "Swarm's replicas") - start
    except BenchError as e:  # say what Swarm says of its tasks
        tasks = sh("docker", "-H", manager, "service", "ps", "--no-trunc", "conv_web", check=False)
        raise BenchError(f"{e}:\n{tasks.stdout}{tasks.stderr}") from None
    swarm_stack_rm(manager, "conv")
    wait_until(lambda: gone(env, hosts, label), 120, "Swarm's containers to go", 0.2)
    return took


RAW_NETWORK = "swarmpy-bench-raw"
_RAW_RUNS = itertools.count(1)


def time_raw(env: Env, hosts: list[str], replicas: int, in_flight: int) -> float:
    """The engine's own limit: create and start the same containers, `in_flight` at a time per engine,
    each on a network of the engine's with an address of its own, as a stack's tasks are (in swarmpy
    and in Swarm): a container on a user-defined network costs its engine about a quarter more than
    one on the default bridge (Docker's embedded DNS, among others)."""
    per_host = replicas // len(hosts)
    # a network of its own each run: the engine now and then refuses to remove one whose containers
    # it has just removed ("has active endpoints", none attached), and its subnet stays taken
    run = next(_RAW_RUNS)
    name, prefix = f"{RAW_NETWORK}-{run}", f"10.251.{run}"

    def create(host_index: int, i: int) -> None:
        api = env.engine(hosts[host_index]).api
        config = api.create_host_config(restart_policy={"Name": "no"}, network_mode=name)
        networking = {"EndpointsConfig": {name: {"IPAMConfig": {"IPv4Address": f"{prefix}.{10 + i}"}}}}
        cid = api.create_container(IMAGE, command=["sh", "-c", "exec httpd -f -p 80 -h /www"],
                                   labels={RAW_LABEL: "1"}, host_config=config, stop_timeout=1,
                                   networking_config=networking)["Id"]
        api.start(cid)

    def network(host: str) -> None:
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"{prefix}.0/24", gateway=f"{prefix}.1")])
        env.engine(host).api.create_network(name, driver="bridge", ipam=ipam,
                                            options={"com.docker.network.driver.mtu": "1450"})

    start = time.perf_counter()
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(network, hosts))
    with ThreadPoolExecutor(in_flight * len(hosts)) as pool:
        list(pool.map(lambda job: create(*job), [(h, i) for h in range(len(hosts)) for i in range(per_host)]))
    took = wait_until(lambda: running(env, hosts, RAW_LABEL) >= replicas, 60, "raw containers") - start
    for host in hosts:
        api = env.engine(host).api
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: api.remove_container(c["Id"], force=True),
                          api.containers(all=True, filters={"label": RAW_LABEL})))
        remove_raw_network(api, name)
    return took


def remove_raw_network(api, name: str) -> None:
    """Removed, or, when the engine keeps refusing, said so (the next run takes another network)."""
    for _ in range(20):
        try:
            api.remove_network(name)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            error = e
            time.sleep(0.5)
    print(f"bench: the engine keeps the raw reference's network {name}: {error}", file=sys.stderr)


def converge(env: Env, name: str, hosts: list[str], swarm_manager: str, replicas: int, in_flight: int,
             constraint: str, runs: int) -> list[Figure]:
    swarmpy_times, swarm_times, raw_times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        ours = stack_file(Path(tmp), "ours", IMAGE, replicas, constraint)
        theirs = stack_file(Path(tmp), "theirs", SWARM_IMAGE, replicas, constraint)
        for _ in range(runs):
            swarmpy_times.append(time_swarmpy(env, hosts, ours, replicas))
            swarm_times.append(time_swarm(env, swarm_manager, hosts, theirs, replicas))
            raw_times.append(time_raw(env, hosts, replicas, in_flight))
    what = f"{replicas} replicas"
    return [
        Figure(f"{name}: deploy {what}", "s", "Docker Swarm, docker stack deploy", swarmpy_times, swarm_times,
               aim="<= 0.75x"),
        Figure(f"{name}: deploy {what}", "s", f"raw Docker API, {in_flight} in flight per engine, on a network",
               swarmpy_times, raw_times, aim="<= 1.2x",
               note="the raw reference makes a network on each engine and puts each container on it with an "
                    "address, as swarmpy and Swarm do for a stack's tasks"),
    ]


def one_node(env: Env, runs: int = 3, replicas: int = 50) -> list[Figure]:
    """Figure 1: this machine's engine, reached by swarmpy on its socket."""
    local = next(n for n in env.cluster.json("node", "ls") if n["role"] == "manager")["hostname"]
    manager = env.local_swarm
    env.cluster.cli("node", "update", "--availability", "active", local)
    try:
        return converge(env, "converge, one node", [manager], manager, replicas, 8, "node.role==manager", runs)
    finally:
        env.cluster.cli("node", "update", "--availability", "drain", local)


def three_nodes(env: Env, runs: int = 3, replicas: int = 60) -> list[Figure]:
    """Figure 2: the lab's three engines, reached by swarmpy over SSH."""
    # every lab node may take tasks (in Swarm, node1 is also its manager): a constraint all of them meet
    return converge(env, "converge, three nodes", env.lab_hosts, env.lab_swarm, replicas, 8,
                    "node.platform.os==linux", runs)
