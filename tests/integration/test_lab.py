"""The lab, as a user sees it: real hosts reached over SSH and Docker, and nothing left after `down`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import docker
import paramiko
import pytest
from click.testing import CliRunner

from swarmpy import lab as swarmpy_lab
from swarmpy.cli import main

pytestmark = pytest.mark.lab

HTTPD = "hostname > /www/index.html; exec httpd -f -p 80 -h /www"


@pytest.fixture
def extra_labs(lab_machine):
    """Names of the labs a test makes besides `test`: each is taken down afterwards, even on failure."""
    names = []
    yield names
    for name in names:
        swarmpy_lab.down(name)


def fresh_lab(extra_labs, name, nodes):
    swarmpy_lab.down(name)  # a stale one from an earlier run
    extra_labs.append(name)
    return swarmpy_lab.up(name=name, nodes=nodes)


def ssh_to(lab, node):
    """A paramiko session trusting only the lab's known_hosts."""
    client = paramiko.SSHClient()
    client.load_host_keys(lab.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(node.address, node.ssh_port, username="root", key_filename=lab.identity,
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def ssh_run(client, command):
    _, stdout, stderr = client.exec_command(command, timeout=30)
    out = stdout.read().decode().strip()
    assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
    return out


def leftovers(name, directory, bridge):
    """Whatever of a lab this machine still shows to `ip`, `ps`, mountinfo, iptables and ls."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"swarmpy-{name}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().split("@")[0].startswith(bridge)]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    found += [f"process {line.strip()}" for line in ps.splitlines() if directory + "/" in line]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(directory)]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    found += [f"iptables {line}" for line in rules.splitlines() if bridge in line.split()]
    found += [f"cgroup {path}" for path in
              (os.path.join("/sys/fs/cgroup", h, f"swarmpy-lab-{name}") for h in os.listdir("/sys/fs/cgroup"))
              if os.path.exists(path)]
    if os.path.exists(directory):
        found.append(f"directory {directory}")
    return found


def test_each_node_answers_ssh_with_its_own_hostname_and_engine(lab):
    for node in lab.nodes:
        with ssh_to(lab, node) as client:
            assert ssh_run(client, "hostname") == node.name
            # DOCKER_HOST is set for logins: plain `docker` reaches this node's engine.
            assert ssh_run(client, "docker info --format '{{.Name}}'") == node.name
            assert ssh_run(client, "command -v swarmpy").endswith("/swarmpy")


def test_ssh_sessions_do_not_run_this_machines_login_scripts(lab):
    """A node's shell starts clean: root's .bashrc and .profile are empty there, whatever they say here
    (and the masks stay in the nodes' own mount namespaces)."""
    home = os.path.expanduser("~root")
    with ssh_to(lab, lab.nodes[0]) as client:
        for name in (".bashrc", ".profile"):
            if os.path.exists(os.path.join(home, name)):
                assert ssh_run(client, f"wc -c < {home}/{name}") == "0"
    assert not [line for line in open("/proc/self/mountinfo") if "empty-login-script" in line]


def test_a_node_whose_key_is_not_in_known_hosts_is_refused(lab):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(lab.nodes[0].address, username="root", key_filename=lab.identity,
                       look_for_keys=False, allow_agent=False, timeout=10)


def test_docker_sdk_over_ssh_reaches_each_nodes_own_engine(lab, tmp_path, monkeypatch):
    # The SDK's ssh transport reads only ~/.ssh: give it a HOME made of the lab's files.
    (tmp_path / ".ssh").mkdir()
    shutil.copy(lab.ssh_config, tmp_path / ".ssh" / "config")
    shutil.copy(lab.known_hosts, tmp_path / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(tmp_path))
    clients = {node.name: docker.DockerClient(base_url=node.ssh_url) for node in lab.nodes}
    try:
        infos = {name: client.info() for name, client in clients.items()}
        assert {name: info["Name"] for name, info in infos.items()} == {n: n for n in clients}
        assert len({info["ID"] for info in infos.values()}) == len(clients)  # three engines, not one
        container = clients["node2"].containers.run(
            "swarmpy/busybox:latest", "sleep 60", detach=True, labels={"test": "sdk-over-ssh"})
        try:
            seen = {name: [c.id for c in client.containers.list(filters={"label": "test=sdk-over-ssh"})]
                    for name, client in clients.items()}
            assert seen == {"node1": [], "node2": [container.id], "node3": []}
        finally:
            container.remove(force=True)
    finally:
        for client in clients.values():
            client.close()


def test_docker_cli_over_ssh_with_the_labs_ssh_wrapper(lab):
    node = lab.node("node3")
    env = {**os.environ, "PATH": f"{lab.bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["docker", "-H", node.ssh_url, "info", "--format", "{{.Name}}"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "node3"), done.stderr


def test_port_published_on_node2_answers_http_at_node2s_address(lab):
    node2 = lab.node("node2")
    engine = docker.DockerClient(base_url=node2.docker_host)
    container = engine.containers.run("swarmpy/busybox:latest", ["sh", "-c", HTTPD],
                                      detach=True, ports={"80/tcp": None})
    try:
        container.reload()
        port = int(container.ports["80/tcp"][0]["HostPort"])
        body = _get_with_retries(f"http://{node2.address}:{port}/")
        assert body.strip() == container.id[:12]  # the container's hostname
        with pytest.raises(OSError):  # the port is node2's, not node1's
            urllib.request.urlopen(f"http://{lab.node('node1').address}:{port}/", timeout=3)
    finally:
        container.remove(force=True)
        engine.close()


def test_cli_status_lists_every_node_up(lab):
    result = CliRunner().invoke(main, ["lab", "status", "--name", lab.name])
    assert result.exit_code == 0, result.output
    for node in lab.nodes:
        row = next(line for line in result.output.splitlines() if f" {node.name} " in line)
        assert node.address in row and row.count(" up ") == 2, row
    as_json = CliRunner().invoke(main, ["lab", "status", "--name", lab.name, "--format", "json"])
    assert [(n["name"], n["engine"], n["sshd"]) for n in json.loads(as_json.output)] == [
        (node.name, True, True) for node in lab.nodes]


def test_cli_status_of_a_missing_lab_is_an_error():
    result = CliRunner().invoke(main, ["lab", "status", "--name", "no-such-lab"])
    assert result.exit_code == 1
    assert "error: no lab named 'no-such-lab'" in result.output


def test_up_refuses_a_name_in_use(lab):
    with pytest.raises(swarmpy_lab.LabError, match="exists already"):
        swarmpy_lab.up(name=lab.name, nodes=1)


def test_two_labs_side_by_side_do_not_share_anything(lab, extra_labs):
    side = fresh_lab(extra_labs, "t-side", nodes=1)
    assert side.subnet != lab.subnet and side.bridge != lab.bridge
    assert side.node("node1").address not in {n.address for n in lab.nodes}
    assert [s["engine"] and s["sshd"] for s in swarmpy_lab.status("t-side")] == [True]
    swarmpy_lab.down("t-side")
    # Taking one lab down leaves the other whole.
    assert [s["engine"] and s["sshd"] for s in swarmpy_lab.status(lab.name)] == [True, True, True]


def test_down_leaves_nothing_behind_and_can_run_twice(lab, extra_labs):
    down_lab = fresh_lab(extra_labs, "t-down", nodes=2)
    node1, node2 = down_lab.nodes
    for node in (node1, node2):
        subprocess.run(["docker", "-H", node.docker_host, "run", "-d", "-p", "80",
                        "swarmpy/busybox:latest", "sh", "-c", HTTPD], check=True, capture_output=True)
    ssh_session = ssh_to(down_lab, node2)  # a login left open
    os.kill(node1.pid_dockerd, signal.SIGKILL)  # and an engine that crashed, its containers still running
    before = leftovers("t-down", down_lab.dir, down_lab.bridge)
    assert {kind.split()[0] for kind in before} >= {"netns", "link", "process", "mount", "iptables", "directory"}

    assert swarmpy_lab.down("t-down") is True
    assert leftovers("t-down", down_lab.dir, down_lab.bridge) == []
    assert swarmpy_lab.down("t-down") is False
    ssh_session.close()


def test_down_after_up_was_killed_halfway(extra_labs):
    swarmpy_lab.down("t-crash")
    extra_labs.append("t-crash")
    up = subprocess.Popen([sys.executable, "-c", "from swarmpy import lab; lab.up(name='t-crash', nodes=2, progress=print)"],
                          stdout=subprocess.PIPE, text=True)
    try:
        for line in up.stdout:
            if ": sshd on " in line:
                break
        up.kill()  # as a crash would: dockerds still booting, their pids not recorded yet
    finally:
        up.wait()
    directory, bridge = "/var/lib/swarmpy/lab/t-crash", "sp-t-crash"
    kinds = {kind.split()[0] for kind in leftovers("t-crash", directory, bridge)}
    assert kinds >= {"netns", "link", "process", "mount", "iptables", "directory"}

    assert swarmpy_lab.down("t-crash") is True
    assert leftovers("t-crash", directory, bridge) == []
    # and the name is free again
    swarmpy_lab.up(name="t-crash", nodes=1)
    assert [(s["name"], s["engine"], s["sshd"]) for s in swarmpy_lab.status("t-crash")] == [("node1", True, True)]


def _get_with_retries(url, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
