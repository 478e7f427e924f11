"""From a task and its service spec to the Docker API's create call, checked as plain values."""

from __future__ import annotations

import io
import tarfile

from swarmpy.model import (DeploySpec, FileReference, Healthcheck, Logging, Mount, Node, Port, Resources,
                           ResourceSet, Service, ServiceSpec, Task, Ulimit)
from swarmpy.worker.containers import container_plan, endpoints_from_inspect, files_archive

NODE = Node(id="node1id", hostname="node1", address="10.0.0.2")


def plan_of(spec: ServiceSpec, stack: dict | None = None, slot: int | None = 2):
    service = Service(id="svcid", stack="shop", name=f"shop_{spec.name}", spec=spec)
    task = Task(id="taskid", service_id=service.id, service_name=service.name, spec_version=1, slot=slot,
                node_id=NODE.id)
    return container_plan(task, service, NODE, stack, cluster_id="clusterid")


def test_name_labels_and_the_process():
    spec = ServiceSpec(name="web", image="busybox:1", command=["httpd", "-f"], entrypoint=["/init"],
                       environment={"A": "1", "UNSET": None}, labels={"team": "x"}, user="1000:1000",
                       working_dir="/srv", hostname="web-host", stop_signal="SIGQUIT", stop_grace_period=7.6)
    plan = plan_of(spec)
    assert plan.name == "shop_web.2.taskid" and plan.image == "busybox:1"
    c = plan.create
    assert c["command"] == ["httpd", "-f"] and c["entrypoint"] == ["/init"]
    assert c["environment"] == ["A=1"]  # a variable without a value is not set at all
    assert c["labels"] == {"team": "x", "com.swarmpy.cluster": "clusterid", "com.swarmpy.task.id": "taskid", "com.swarmpy.service.id": "svcid",
                           "com.swarmpy.service.name": "shop_web", "com.swarmpy.stack": "shop",
                           "com.swarmpy.node.id": "node1id", "com.swarmpy.task.slot": "2"}
    assert (c["user"], c["working_dir"], c["hostname"]) == ("1000:1000", "/srv", "web-host")
    assert (c["stop_signal"], c["stop_timeout"]) == ("SIGQUIT", 8)
    assert plan.host_config["restart_policy"] == {"Name": "no"}  # swarmpy replaces tasks, Docker must not


def test_ports_ingress_on_an_ephemeral_host_port_and_host_mode_on_the_published_one():
    spec = ServiceSpec(name="web", image="x", ports=[Port(80, 8080), Port(443, 8443, mode="host"),
                                                     Port(53, 53, protocol="udp")])
    plan = plan_of(spec)
    assert plan.create["ports"] == [(80, "tcp"), (443, "tcp"), (53, "udp")]
    assert plan.host_config["port_bindings"] == {"80/tcp": None, "443/tcp": 8443, "53/udp": None}


def test_resources_mounts_and_the_rest_of_the_host_config():
    spec = ServiceSpec(
        name="db", image="x",
        volumes=[Mount("volume", "/data", "pgdata"), Mount("bind", "/etc/x", "/srv/x", read_only=True),
                 Mount("tmpfs", "/tmp", tmpfs_size=1 << 20), Mount("volume", "/anon")],
        healthcheck=Healthcheck(test=["CMD-SHELL", "pg_isready"], interval=2.5, timeout=1, retries=3,
                                start_period=10),
        ulimits={"nofile": Ulimit(1024, 2048)}, sysctls={"net.core.somaxconn": "1024"}, cap_add=["NET_ADMIN"],
        cap_drop=["MKNOD"], init=True, extra_hosts=["db.local:10.0.0.9", "other=10.0.0.8"], dns=["10.0.0.1"],
        dns_search=["lab"], logging=Logging("json-file", {"max-size": "1m"}), read_only=True,
        deploy=DeploySpec(resources=Resources(limits=ResourceSet(cpus=0.5, memory=64 << 20, pids=100),
                                              reservations=ResourceSet(memory=16 << 20))))
    plan = plan_of(spec, stack={"volumes": {"pgdata": {}}})
    h = plan.host_config
    assert (h["nano_cpus"], h["mem_limit"], h["mem_reservation"], h["pids_limit"]) == (
        500_000_000, 64 << 20, 16 << 20, 100)
    assert h["mounts"][0] == {"Target": "/data", "Type": "volume", "ReadOnly": False, "Source": "shop_pgdata",
                              "VolumeOptions": {"NoCopy": False, "Labels": {"com.swarmpy.stack": "shop",
                                                                            "com.swarmpy.cluster": "clusterid"}}}
    assert h["mounts"][1] == {"Target": "/etc/x", "Type": "bind", "ReadOnly": True, "Source": "/srv/x"}
    assert h["mounts"][2] == {"Target": "/tmp", "Type": "tmpfs", "ReadOnly": False,
                              "TmpfsOptions": {"SizeBytes": 1 << 20}}
    assert "Source" not in h["mounts"][3]  # an anonymous volume
    assert h["ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert h["sysctls"] == {"net.core.somaxconn": "1024"}
    assert (h["cap_add"], h["cap_drop"], h["init"], h["read_only"]) == (["NET_ADMIN"], ["MKNOD"], True, True)
    assert h["extra_hosts"] == {"db.local": "10.0.0.9", "other": "10.0.0.8"}
    assert (h["dns"], h["dns_search"]) == (["10.0.0.1"], ["lab"])
    assert h["log_config"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert plan.create["healthcheck"] == {"test": ["CMD-SHELL", "pg_isready"], "interval": 2_500_000_000,
                                          "timeout": 1_000_000_000, "start_period": 10_000_000_000, "retries": 3}


def test_external_and_named_volumes_keep_their_names():
    spec = ServiceSpec(name="db", image="x", volumes=[Mount("volume", "/a", "ext"), Mount("volume", "/b", "named")])
    plan = plan_of(spec, stack={"volumes": {"ext": {"external": True}, "named": {"name": "really"}}})
    assert [m["Source"] for m in plan.host_config["mounts"]] == ["ext", "really"]


def test_a_disabled_healthcheck_and_a_global_task():
    plan = plan_of(ServiceSpec(name="agent", image="x", healthcheck=Healthcheck(disable=True)), slot=None)
    assert plan.create["healthcheck"] == {"test": ["NONE"]}
    assert plan.name == "shop_agent.node1id.taskid"


def test_secret_and_config_files_are_one_tar_with_their_modes_and_owners():
    files = [("/run/secrets/db", b"pw", FileReference("db", "db", uid="70", gid="71", mode=0o400)),
             ("/etc/app/app.conf", b"x=1\n", FileReference("conf", "/etc/app/app.conf"))]
    with tarfile.open(fileobj=io.BytesIO(files_archive(files))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["run/secrets/db"].mode == 0o400
        assert (members["run/secrets/db"].uid, members["run/secrets/db"].gid) == (70, 71)
        assert tar.extractfile("run/secrets/db").read() == b"pw"
        assert members["etc/app"].isdir() and members["etc/app/app.conf"].mode == 0o444


def test_endpoints_are_the_node_address_and_the_host_ports_docker_chose():
    spec = ServiceSpec(name="web", image="x", ports=[Port(80, 8080), Port(53, 5353, protocol="udp")])
    inspect = {"NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "32769"}]}}}
    assert endpoints_from_inspect(spec, "10.0.0.2", inspect) == [
        {"target": 80, "protocol": "tcp", "address": "10.0.0.2", "port": 32768, "published": 8080,
         "mode": "ingress"},
        {"target": 53, "protocol": "udp", "address": "10.0.0.2", "port": 32769, "published": 5353,
         "mode": "ingress"}]


def test_cluster_networks_the_first_at_create_the_others_after_and_the_clusters_dns_first():
    spec = ServiceSpec(name="web", image="x", dns=["10.9.9.1"])
    service = Service(id="svcid", stack="shop", name="shop_web", spec=spec)
    task = Task(id="taskid", service_id=service.id, service_name=service.name, spec_version=1, slot=1,
                node_id=NODE.id)
    plan = container_plan(task, service, NODE, networks=[("shop_front-abc123", "10.0.1.5"),
                                                         ("shop_back-abc123", "10.0.2.7")],
                          nameservers=["10.0.1.1", "10.0.2.1", "10.9.9.1"], cluster_id="abc123")
    assert plan.host_config["network_mode"] == "shop_front-abc123"
    assert plan.create["networking_config"] == {
        "EndpointsConfig": {"shop_front-abc123": {"IPAMConfig": {"IPv4Address": "10.0.1.5"}}}}
    assert plan.create["mac_address"] == "02:42:0a:00:01:05"
    assert plan.connect == [("shop_back-abc123", "10.0.2.7")]
    assert plan.host_config["dns"] == ["10.0.1.1", "10.0.2.1", "10.9.9.1"]
