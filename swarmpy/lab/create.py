"""`lab up`: N hosts on this machine, each with its own netns, hostname, dockerd and sshd.

The plan (every name and address) is recorded before anything is made, and
pids as soon as they are known, so `down` can undo a crash at any step.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import time
from contextlib import contextmanager

from swarmpy.lab import engine, images as lab_images, network, sshd, teardown
from swarmpy.lab.shell import LabError, on_each
from swarmpy.lab.state import (ROOT, Lab, LabNode, bridge_name, cgroup_name, host_link_name,
                               lab_dir, netns_name, recorded_labs)

MAX_NODES = 100
_TOOLS = ("ip", "iptables", "nsenter", "unshare", "setsid", "dockerd", "docker", "ssh-keygen", sshd.SSHD)


def up(name: str = "lab", nodes: int = 3, subnet: str | None = None, images=(), progress=None) -> Lab:
    """Bring a lab up and return it once every engine and sshd answers.

    If it fails, what it made is taken down again before the error is raised.
    """
    say = progress or (lambda message: None)
    started = time.monotonic()
    _check_machine(nodes)
    if lab_images.build_image():
        say(f"built {lab_images.BUSYBOX_IMAGE}")
    wanted = list(dict.fromkeys([lab_images.BUSYBOX_IMAGE, *images]))
    lab_images.check_present(wanted)
    with _allocation_lock():
        lab = plan(name, nodes, subnet)
        os.makedirs(lab.dir)
        lab.images = wanted
        lab.save()
    try:
        _build(lab, say, started)
    except BaseException:
        teardown.down(name)
        raise
    say(f"lab {name} ready in {time.monotonic() - started:.1f} s")
    return lab


def _build(lab: Lab, say, started: float) -> None:
    say(f"lab {lab.name}: {len(lab.nodes)} nodes on {lab.subnet}, bridge {lab.bridge}, host {lab.host_address}")
    prefix = ipaddress.ip_network(lab.subnet).prefixlen
    network.create_bridge(lab.bridge, f"{lab.host_address}/{prefix}")
    network.allow_forwarding(lab.bridge, lab.cgroup)
    for node in lab.nodes:
        os.makedirs(node.dir)
        network.create_node_netns(node.netns, host_link_name(lab.name, node.index), lab.bridge,
                                  f"{node.address}/{prefix}")
        network.create_uts(node.uts, node.name)
    say(f"namespaces ready: {', '.join(n.netns for n in lab.nodes)}")

    for node in lab.nodes:
        engine.start(lab, node)  # detached: all dockerds boot at once
    on_each(lambda node: _start_sshd(lab, node, say), lab.nodes)
    lab.save()
    sshd.write_client_files(lab)
    on_each(lambda node: _wait_engine(node, say, started), lab.nodes)
    lab.save()
    lab_images.load_images(lab, lab.images, progress=say)


def plan(name: str, nodes: int, subnet: str | None) -> Lab:
    """Every name and address of a new lab, checked against this machine and other labs."""
    directory = lab_dir(name)
    if directory.exists():
        raise LabError(f"lab {name} exists already (`swarmpy lab down --name {name}` removes it)")
    taken = network.used_networks()
    for other in recorded_labs():
        taken += [ipaddress.ip_network(other.subnet), ipaddress.ip_network(other.bip_pool)]
    if subnet:
        net = network.check_subnet(subnet, nodes, taken)
        pool = network.pick_pool(name, taken + [net])
    else:
        pool = network.pick_pool(name, taken)
        net = next(pool.subnets(new_prefix=24))
    hosts = net.hosts()
    host_address = str(next(hosts))
    bips = list(pool.subnets(new_prefix=24))[1:]  # the first /24 may be the node subnet
    lab = Lab(name=name, dir=str(directory), subnet=str(net), bridge=bridge_name(name),
              host_address=host_address, bip_pool=str(pool), cgroup=cgroup_name(name))
    for index in range(1, nodes + 1):
        node_name = f"node{index}"
        node_dir = os.path.join(directory, node_name)
        lab.nodes.append(LabNode(
            name=node_name, index=index, address=str(next(hosts)), netns=netns_name(name, node_name),
            dir=node_dir, docker_socket=os.path.join(node_dir, "docker.sock"),
            bip=f"{next(bips[index - 1].hosts())}/24"))
    return lab


def _start_sshd(lab: Lab, node: LabNode, say) -> None:
    node.pid_sshd = sshd.start(lab, node)
    say(f"{node.name}: sshd on {node.address}:{node.ssh_port}")


def _wait_engine(node: LabNode, say, started: float) -> None:
    node.pid_dockerd = engine.wait_ready(node)
    say(f"{node.name}: dockerd answers on {node.docker_socket} ({time.monotonic() - started:.1f} s)")


def _check_machine(nodes: int) -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, bridges, dockerd)")
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"--nodes must be 1 to {MAX_NODES}, not {nodes}")
    missing = [tool for tool in _TOOLS if not shutil.which(tool)]
    if missing:
        raise LabError(f"missing on this machine: {', '.join(missing)} (run scripts/setup.sh)")


@contextmanager
def _allocation_lock():
    """Two `lab up` at once must not pick the same subnet."""
    os.makedirs(ROOT, exist_ok=True)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
