"""Faults the cluster survives: a worker killed in the middle of a job, Redis restarted."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time

import docker
import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from swarmpy.settings import StateDir
from tests.integration.cluster import wait_for

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
    return redis.Redis.from_url(StateDir(cluster.state_dir).load().redis_url)


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


def test_redis_restart_loses_nothing(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
""")
    cluster.deploy(path, "aof")
    state = StateDir(cluster.state_dir)
    conf = state.redis_dir / "redis.conf"
    try:
        _redis(cluster).shutdown()  # with AOF on, everything written so far is on disk
        time.sleep(2)
        subprocess.run(["redis-server", str(conf)], check=True, capture_output=True)
        wait_for(lambda: cluster.cli("service", "ls", check=False).returncode == 0, 20, what="the API")
        assert cluster.services("aof")["aof_web"]["replicas"] == "2/2"
        cluster.cli("service", "scale", "aof_web=4")
        assert sum(cluster.running("aof").values()) == 4
    finally:
        cluster.cli("stack", "rm", "aof")
