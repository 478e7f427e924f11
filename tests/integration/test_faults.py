"""Faults the cluster survives, each injected for real with requests flowing through the mesh: a
job process killed in the middle of a job, Redis, the worker, the load balancer SIGKILLed."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
from pathlib import Path

import docker
import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from swarmpy import bootstrap
from swarmpy.settings import StateDir
from swarmpy.store import replication
from tests.integration.cluster import wait_for
from tests.integration.test_mesh import WEB, RequestStream, served_by

BIG_IMAGE = "swarmpy/test-big:1"


@pytest.fixture(scope="module")
def big_image(lab_machine):
    """An image of ~150 MB on this machine's engine only: sending it to a node takes a while."""
    client = docker.from_env()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("blob")
        info.size = 150 * 2**20
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    container = client.containers.create("swarmpy/busybox:latest", command=["true"])
    try:
        root = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove()
    merged = io.BytesIO()
    with tarfile.open(fileobj=merged, mode="w") as out:
        for source in (root, layer):
            source.seek(0)
            with tarfile.open(fileobj=source) as tar:
                for member in tar:
                    out.addfile(member, tar.extractfile(member) if member.isfile() else None)
    client.api.import_image_from_data(merged.getvalue(), repository=BIG_IMAGE.split(":")[0], tag="1",
                                      changes=['ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin'])
    yield BIG_IMAGE
    client.images.remove(BIG_IMAGE, force=True)


def _redis(cluster) -> redis.Redis:
    return replication.client(StateDir(cluster.state_dir).load(), decode_responses=False)


def test_worker_killed_mid_job_is_retried_without_duplicates(cluster, big_image, tmp_path):
    path = cluster.write_stack(tmp_path, f"""
services:
  big:
    image: {big_image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      placement:
        constraints: [node.hostname==node2]
""")
    node2 = next(n for n in cluster.json("node", "ls") if n["hostname"] == "node2")
    conn = _redis(cluster)
    registry = StartedJobRegistry(queue=Queue(f"swarmpy:node:{node2['id']}", connection=conn,
                                              serializer=JSONSerializer))
    cluster.deploy(path, "kill", "--detach")
    try:
        job_ids = wait_for(registry.get_job_ids, 20, interval=0.05, what="the start job to run")
        # in the middle of it: sending the image to node2 (the task is preparing)
        wait_for(lambda: any(t["state"] == "preparing" for t in cluster.tasks("kill_big")), 20, interval=0.05,
                 what="the task to be preparing")
        time.sleep(0.5)
        job = Job.fetch(job_ids[0], connection=conn, serializer=JSONSerializer)
        pid = int(job.worker_name.rsplit(".", 2)[1])  # <host>.<pid>.<thread>
        os.kill(pid, signal.SIGKILL)  # in the middle of sending the image to node2
        wait_for(lambda: cluster.services("kill")["kill_big"]["replicas"] == "1/1", 90, interval=0.5,
                 what="the task to run after all")
        containers = cluster.engine("node2").containers.list(all=True, filters={"label": "com.swarmpy.stack=kill"})
        assert len(containers) == 1
        task = next(t for t in cluster.tasks("kill_big") if t["state"] == "running")
        assert containers[0].labels["com.swarmpy.task.id"] == task["id"]
    finally:
        cluster.cli("stack", "rm", "kill")
        cluster.engine("node2").images.remove(big_image, force=True)


PORT = 18470
STURDY = WEB.format(port=PORT, replicas=3)

def pid_of(cluster, part: str) -> int:
    try:
        return int((StateDir(cluster.state_dir).run_dir / f"{part}.pid").read_text())
    except (OSError, ValueError):
        return 0  # between a death and the next start


def restarted(cluster, part: str, old: int) -> bool:
    pid = pid_of(cluster, part)
    return pid not in (0, old) and bootstrap.alive(pid)


@pytest.fixture
def sturdy(cluster, tmp_path):
    """Three web tasks behind the mesh, and a stream of requests to them through this machine's port."""
    cluster.deploy(cluster.write_stack(tmp_path, STURDY), "sturdy")
    stream = RequestStream(PORT)
    stream.start()
    yield stream
    stream.stop()
    cluster.cli("stack", "rm", "sturdy", check=False)


def assert_unharmed(cluster, stream: RequestStream, replicas: int = 3) -> None:
    """No request failed, no node was declared down, no task orphaned, one container per task."""
    stream.stop()
    assert not stream.failures, f"{len(stream.failures)} of {len(stream.failures) + len(stream.served)} " \
                                f"requests failed: {stream.failures[:5]}"
    assert len(stream.served) > 100
    assert {n["hostname"]: n["status"] for n in cluster.json("node", "ls")} == \
        {n: "ready" for n in ("node1", "node2", "node3", cluster.local_node)}
    states = [t["state"] for t in cluster.tasks("sturdy_web")]
    assert "orphaned" not in states and states.count("running") == replicas
    assert sum(len(v) for v in cluster.containers("sturdy", running_only=False).values()) == replicas


def test_redis_killed_costs_no_request_no_node_and_no_write(cluster, sturdy):
    old = pid_of(cluster, "redis")
    os.kill(old, signal.SIGKILL)  # with AOF on (fsync every second), what was written is on disk
    wait_for(lambda: restarted(cluster, "redis", old), 10, what="its supervisor to start redis again")
    wait_for(lambda: cluster.cli("service", "ls", check=False).returncode == 0, 20, what="the API")
    time.sleep(20)  # more than three heartbeat periods: long enough to declare every node down, wrongly
    assert_unharmed(cluster, sturdy)
    cluster.cli("service", "scale", "sturdy_web=4")
    assert sum(cluster.running("sturdy").values()) == 4


def test_the_worker_killed_comes_back_without_duplicates(cluster, sturdy):
    old = pid_of(cluster, "worker")
    job_processes = children_of(old)
    assert job_processes
    os.kill(old, signal.SIGKILL)
    # its job processes go with it (they would take jobs the next worker's processes take too)
    wait_for(lambda: not any(bootstrap.alive(p) for p in job_processes), 5, what="the job processes to go")
    wait_for(lambda: restarted(cluster, "worker", old), 10, what="its supervisor to start the worker again")
    time.sleep(16)  # more than three heartbeat periods without the watchers the worker ran
    cluster.cli("service", "scale", "sturdy_web=5")
    assert_unharmed(cluster, sturdy, replicas=5)


def test_the_load_balancer_killed_is_back_within_two_seconds(cluster, sturdy):
    old = pid_of(cluster, "lb")
    time.sleep(1)
    os.kill(old, signal.SIGKILL)
    killed = time.time()
    sturdy.stop()
    wait_for(lambda: served_by(PORT, 1), 10, interval=0.02, what="the port to answer again")
    assert time.time() - killed < 2.0
    assert restarted(cluster, "lb", old)
    health = cluster.json("node", "ls")
    parts = {n["hostname"]: n["parts"] for n in health}[cluster.local_node]
    assert parts["lb"]["restarts"] >= 1 and "SIGKILL" in parts["lb"]["last_exit"]


def test_the_kernel_serves_while_the_load_balancer_is_dead(cluster, sturdy):
    """Its rules stay in the kernel when it is killed, and its successor takes them over in place."""
    stream = RequestStream(PORT, cluster.lab.host_address)
    stream.start()
    try:
        time.sleep(0.5)
        old = pid_of(cluster, "lb")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: restarted(cluster, "lb", old), 10, what="its supervisor to start the lb again")
        time.sleep(2)
    finally:
        stream.stop()
    assert not stream.failures, stream.failures[:5]
    assert len(stream.served) > 50


def test_a_slow_login_shell_does_not_make_its_node_look_dead(cluster, sturdy):
    """Every SSH session into node2 now takes 20 s to start (root's .bashrc there sleeps, as a pyenv
    lock once made this machine's do), and the worker is killed so that its watchers connect anew:
    node2 is never declared down, and no request fails."""
    login_script = Path(cluster.lab.node("node2").dir, "empty-login-script")  # node2's .bashrc
    login_script.write_text("sleep 20\n")
    try:
        old = pid_of(cluster, "worker")
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: restarted(cluster, "worker", old), 10, what="its supervisor to start the worker again")
        seen = set()
        for _ in range(18):  # 36 s: the slow sessions, and three heartbeat periods after them
            seen.add({n["hostname"]: n["status"] for n in cluster.json("node", "ls")}["node2"])
            time.sleep(2)
        assert seen == {"ready"}, seen
    finally:
        login_script.write_text("")
    assert_unharmed(cluster, sturdy)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def test_two_clusters_on_this_machines_engine_leave_each_other_alone(cluster, tmp_path):
    """A second cluster on this machine (its own state dir, Redis and API) shares the local engine
    with the test cluster: each cluster's watchers compare the engine's containers with their own
    tasks when they connect, and must remove only their own."""
    from tests.integration.cluster import Cluster, free_port
    other = Cluster(cluster.lab, tmp_path / "other-state")
    other.api_port = free_port()
    local = docker.from_env()
    try:
        # its own address pool, as two clusters on one machine should have (both default to 10.0.0.0/8)
        other.cli("init", "--api-port", str(other.api_port), "--no-lb", "--default-addr-pool", "10.250.0.0/16")
        wait_for(lambda: other.json("node", "ls") and other.json("node", "ls")[0]["status"] == "ready", 30,
                 what="the second cluster's node")
        theirs = cluster.write_stack(tmp_path, """
services:
  idle:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
""", "theirs.yml")
        other.deploy(theirs, "theirs")
        cluster.cli("node", "update", "--availability", "active", cluster.local_node)
        ours = cluster.write_stack(tmp_path, """
services:
  idle:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      placement: {constraints: [node.role==manager]}
""", "ours.yml")
        cluster.deploy(ours, "ours")

        def on_engine(stack):
            return len(local.containers.list(filters={"label": f"com.swarmpy.stack={stack}"}))
        assert (on_engine("theirs"), on_engine("ours")) == (2, 1)
        # both workers start again: their watchers reconnect and compare containers with tasks at once
        for c in (cluster, other):
            old = pid_of(c, "worker")
            os.kill(old, signal.SIGKILL)
            wait_for(lambda c=c, old=old: restarted(c, "worker", old), 10, what="the worker to start again")
        time.sleep(8)
        assert (on_engine("theirs"), on_engine("ours")) == (2, 1)
        # the second cluster goes, with its stacks: ours stays
        other.cli("leave", "--remove-stacks")
        assert (on_engine("theirs"), on_engine("ours")) == (0, 1)
    finally:
        other.cli("leave", "--remove-stacks", "--force", check=False)
        cluster.cli("stack", "rm", "ours", check=False)
        cluster.cli("node", "update", "--availability", "drain", cluster.local_node)
