"""Stacks on a 3-node lab, through the CLI: placement, scaling, redeploys, healing, removal."""

from __future__ import annotations

import pytest

from tests.integration.cluster import wait_for

WEB = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
    stop_grace_period: 1s
    deploy:
      replicas: 6
      restart_policy:
        delay: 0s
  api:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      placement:
        constraints:
          - node.labels.zone==b
"""


@pytest.fixture
def two_services(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, WEB)
    cluster.deploy(path, "two")
    yield path
    cluster.cli("stack", "rm", "two", check=False)


def test_deploy_spreads_tasks_and_obeys_constraints(cluster, two_services):
    # 6 replicas over 3 equal nodes: 2 on each; the constrained service only on zone b (node2, node3)
    assert cluster.running("two", "web") == {"node1": 2, "node2": 2, "node3": 2}
    api = cluster.running("two", "api")
    assert api["node1"] == 0 and api["node2"] + api["node3"] == 3 and min(api["node2"], api["node3"]) >= 1
    services = cluster.services("two")
    assert services["two_web"]["replicas"] == "6/6"
    assert services["two_api"]["replicas"] == "3/3"
    names = {t["name"] for t in cluster.tasks("two_web")}
    assert names == {f"two_web.{i}" for i in range(1, 7)}


def test_scale_up_and_down(cluster, two_services):
    cluster.cli("service", "scale", "two_web=9")
    assert sum(cluster.running("two", "web").values()) == 9
    assert cluster.running("two", "web") == {"node1": 3, "node2": 3, "node3": 3}
    cluster.cli("service", "scale", "two_web=3")
    wait_for(lambda: sum(cluster.running("two", "web").values()) == 3, 30, what="3 web containers")
    # scaled down where it keeps the spread
    assert cluster.running("two", "web") == {"node1": 1, "node2": 1, "node3": 1}
    assert cluster.services("two")["two_web"]["replicas"] == "3/3"


def test_redeploy_unchanged_restarts_nothing(cluster, two_services):
    def container_ids():
        return sorted(c.id for n in ("node1", "node2", "node3")
                      for c in cluster.engine(n).containers.list(filters={"label": "com.swarmpy.stack=two"}))

    before = container_ids()
    done = cluster.deploy(two_services, "two")
    assert "Unchanged service two_web" in done.stdout and "Unchanged service two_api" in done.stdout
    assert container_ids() == before


def test_changed_service_is_updated(cluster, two_services, tmp_path):
    changed = cluster.write_stack(tmp_path, WEB.replace('["sleep", "3600"]', '["sleep", "3601"]'), "changed.yml")
    done = cluster.deploy(changed, "two")
    assert "Updating service two_api" in done.stdout and "Unchanged service two_web" in done.stdout
    for node in ("node2", "node3"):
        for c in cluster.engine(node).containers.list(filters={"label": "com.swarmpy.service.name=two_api"}):
            assert c.attrs["Config"]["Cmd"] == ["sleep", "3601"]
    tasks = cluster.tasks("two_api")
    assert sum(1 for t in tasks if t["desired_state"] == "running" and t["state"] == "running") == 3
    assert sum(1 for t in tasks if t["desired_state"] == "shutdown") == 3  # the old ones, as history


def test_killed_container_is_replaced(cluster, two_services):
    victim = cluster.engine("node1").containers.list(filters={"label": "com.swarmpy.service.name=two_web"})[0]
    victim.kill()
    wait_for(lambda: sum(cluster.running("two", "web").values()) == 6 and
             victim.name not in cluster.containers("two")["node1"], 15, what="a replacement")
    slot = victim.name.split(".")[1]
    history = [t for t in cluster.tasks("two_web") if t["slot"] == int(slot)]
    assert {(t["desired_state"], t["state"]) for t in history} >= {("shutdown", "failed"), ("running", "running")}
    failed = next(t for t in history if t["state"] == "failed")
    assert failed["error"] == "task: non-zero exit (137)"
    ps = cluster.cli("service", "ps", "two_web").stdout
    assert f" \\_ two_web.{slot}" in ps


def test_stack_rm_leaves_no_container(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, WEB)
    cluster.deploy(path, "gone")
    assert sum(cluster.running("gone").values()) == 9
    cluster.cli("stack", "rm", "gone")
    assert cluster.containers("gone", running_only=False) == {"node1": [], "node2": [], "node3": []}
    assert "gone" not in cluster.cli("stack", "ls").stdout


def test_image_no_node_has_is_rejected_and_others_run(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  ghost:
    image: swarmpy/no-such-image:1.0
    deploy: {replicas: 1}
  fine:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
""")
    done = cluster.cli("stack", "deploy", "-c", str(path), "img", "--timeout", "8", check=False)
    try:
        assert done.returncode != 0
        assert "img_ghost" in done.stderr and "No such image: swarmpy/no-such-image:1.0" in done.stderr
        assert cluster.services("img")["img_fine"]["replicas"] == "1/1"
        states = {t["state"] for t in cluster.tasks("img_ghost")}
        assert "rejected" in states
        # fixed: the history keeps the image each task was given, as Swarm's `service ps` does
        fixed = path.read_text().replace("swarmpy/no-such-image:1.0", "swarmpy/busybox:latest\n    command: "
                                         '["sleep", "3600"]\n    stop_grace_period: 1s')
        cluster.deploy(cluster.write_stack(tmp_path, fixed, "fixed.yml"), "img")
        images = {(t["state"], t["image"]) for t in cluster.tasks("img_ghost")}
        assert ("rejected", "swarmpy/no-such-image:1.0") in images and ("running", "swarmpy/busybox:latest") in images
    finally:
        cluster.cli("stack", "rm", "img", check=False)


def test_job_runs_to_completion(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  once:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "echo done"]
    deploy:
      mode: replicated-job
      replicas: 3
""")
    try:
        cluster.deploy(path, "job")
        tasks = wait_for(lambda: [t for t in cluster.tasks("job_once") if t["state"] == "complete"], 30,
                         what="3 complete tasks")
        tasks = cluster.tasks("job_once")
        assert sorted(t["state"] for t in tasks) == ["complete"] * 3
        assert "(3/3 completed)" in cluster.services("job")["job_once"]["replicas"]
        assert "Complete" in cluster.cli("service", "ps", "job_once").stdout
    finally:
        cluster.cli("stack", "rm", "job", check=False)


def test_prune_removes_services_no_longer_in_the_file(cluster, tmp_path):
    cluster.deploy(cluster.write_stack(tmp_path, WEB), "prune")
    try:
        only_web = WEB[:WEB.index("  api:")]
        path = cluster.write_stack(tmp_path, only_web, "web-only.yml")
        kept = cluster.deploy(path, "prune")
        assert "Removing service" not in kept.stdout and set(cluster.services("prune")) == {"prune_web", "prune_api"}
        assert "Keeping service prune_api: no longer in the file" in kept.stdout
        assert "Unchanged service prune_api" not in kept.stdout
        pruned = cluster.deploy(path, "prune", "--prune")
        assert "Removing service prune_api" in pruned.stdout
        assert set(cluster.services("prune")) == {"prune_web"}
        wait_for(lambda: cluster.running("prune", "api") == {"node1": 0, "node2": 0, "node3": 0}, 20,
                 what="the api containers to stop")
    finally:
        cluster.cli("stack", "rm", "prune")


def test_a_task_that_fits_nowhere_stays_pending_and_says_why(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  nowhere:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      placement: {constraints: [node.labels.zone==z]}
""")
    done = cluster.cli("stack", "deploy", "-c", str(path), "nowhere", "--timeout", "5", check=False)
    try:
        assert done.returncode == 1
        assert "scheduling constraints not satisfied on 3 nodes" in done.stderr
        ps = cluster.cli("service", "ps", "nowhere_nowhere").stdout
        assert "Pending" in ps and "no suitable node (" in ps
    finally:
        cluster.cli("stack", "rm", "nowhere")


def test_containers_are_created_with_the_spec(cluster, tmp_path):
    path = cluster.write_stack(tmp_path, """
services:
  full:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    environment: {GREETING: hello}
    labels: {team: core}
    user: "1000"
    working_dir: /tmp
    hostname: full-host
    init: true
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    extra_hosts: ["db.local:10.9.9.9"]
    dns: [10.9.9.1]
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    stop_signal: SIGUSR1
    stop_grace_period: 3s
    volumes:
      - data:/data
      - type: tmpfs
        target: /scratch
    healthcheck: {test: ["CMD", "true"], interval: 2s}
    logging: {driver: json-file, options: {max-size: 1m}}
    deploy:
      labels: {service-level: "yes"}
      resources:
        limits: {cpus: "0.5", memory: 64M, pids: 50}
volumes:
  data:
""")
    cluster.deploy(path, "full")
    try:
        (c,) = cluster.listed("full")
        attrs = cluster.engine(c["node"]).api.inspect_container(c["Id"])
        config, host = attrs["Config"], attrs["HostConfig"]
        assert "GREETING=hello" in config["Env"]
        assert config["Labels"]["team"] == "core" and "service-level" not in config["Labels"]
        assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("1000", "/tmp", "full-host")
        assert (config["StopSignal"], config["StopTimeout"]) == ("SIGUSR1", 3)
        assert config["Healthcheck"]["Test"] == ["CMD", "true"] and config["Healthcheck"]["Interval"] == 2 * 10**9
        assert host["Init"] is True and host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
        # the cluster's DNS first (the gateway of its network on the node), then the service's own
        gateway = next(n for n in cluster.json("network", "ls") if n["name"] == "full_default")["gateway"]
        assert host["ExtraHosts"] == ["db.local:10.9.9.9"] and host["Dns"] == [gateway, "10.9.9.1"]
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
        assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (500_000_000, 64 * 2**20, 50)
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == "full_data"
        assert mounts["/scratch"]["Type"] == "tmpfs"
        assert host["RestartPolicy"]["Name"] == "no"
    finally:
        cluster.cli("stack", "rm", "full")


def test_an_unhealthy_task_is_replaced(cluster, tmp_path):
    """As in Swarm: a task whose healthcheck fails has failed; its container stops, a new task runs."""
    path = cluster.write_stack(tmp_path, """
services:
  sick:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "touch /tmp/ok; sleep 4; rm /tmp/ok; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 1s, retries: 2}
    deploy: {replicas: 1, restart_policy: {delay: 0s}}
""")
    cluster.deploy(path, "sick")
    try:
        first = wait_for(lambda: [t for t in cluster.tasks("sick_sick") if t["state"] == "running"], 30,
                         what="the first task")[0]
        wait_for(lambda: any(t["id"] == first["id"] and t["state"] == "failed" and "unhealthy" in t["error"]
                             for t in cluster.tasks("sick_sick")), 30, what="the task to fail as unhealthy")
        wait_for(lambda: any(t["id"] != first["id"] and t["state"] == "running" for t in cluster.tasks("sick_sick")),
                 30, what="a successor to run")
        wait_for(lambda: first["id"] not in {c["Labels"]["com.swarmpy.task.id"] for c in cluster.listed("sick")}, 20,
                 what="the unhealthy container to stop")
    finally:
        cluster.cli("stack", "rm", "sick")
