"""A node's own dockerd: started inside the node's namespaces, reached on its socket."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import time

from swarmpy.lab import cgroups
from swarmpy.lab.shell import LabError, output, run
from swarmpy.lab.state import Lab, LabNode


def dockerd_command(lab: Lab, node: LabNode) -> list[str]:
    """Everything dockerd keeps is the node's own: data, exec root (its containerd too), socket."""
    return [
        "dockerd",
        "--config-file", os.path.join(node.dir, "daemon.json"),  # not the host's /etc/docker/daemon.json
        "--data-root", node.data_root,
        "--exec-root", node.exec_root,
        "-H", node.docker_host,
        "--pidfile", os.path.join(node.dir, "dockerd.pid"),
        "--bip", node.bip,
        "--cgroup-parent", cgroups.container_parent(lab.cgroup, node.name),
    ]


def daemon_config(node: LabNode) -> dict:
    """The node's daemon.json: its own engine ID where it is not per data root yet."""
    if _dockerd_major() < 23:
        # Before 23.0 the ID came from /etc/docker/key.json: every node would share the host's.
        return {"deprecated-key-path": os.path.join(node.dir, "key.json")}
    return {}


@functools.cache
def _dockerd_major() -> int:
    version = re.search(r"version (\d+)\.", output(["dockerd", "--version"]))
    return int(version.group(1)) if version else 0


def in_node(node: LabNode, args: list[str]) -> list[str]:
    """`args` run in the node's network and UTS namespaces but this machine's mounts.

    `nsenter`, not `ip netns exec`: the latter remounts /sys and hides the
    cgroup mounts dockerd needs.
    """
    return ["nsenter", f"--net=/run/netns/{node.netns}", f"--uts={node.uts}", *args]


def _clear_leftovers(node: LabNode, timeout: float = 10) -> None:
    """What a killed dockerd leaves behind stops a new one: its containerd (still holding its
    state for a moment) and its pid file. Wait for the first to go, remove the second."""
    mark = os.path.join(node.dir, "exec", "containerd").encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in _pids() if mark in _cmdline(pid) and b"containerd" in _cmdline(pid)
                and _state(pid) != "Z"]
        if not left:
            break
        if time.monotonic() > deadline - timeout / 2:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.1)
    # PID 1 of these machines may never reap orphans: a killed daemon stays a zombie,
    # which `kill -0` calls alive, and dockerd would wait on it forever.
    _remove_stale_pidfile(os.path.join(node.dir, "dockerd.pid"), b"dockerd")
    _remove_stale_pidfile(os.path.join(node.dir, "exec", "containerd", "containerd.pid"), b"containerd")


def _remove_stale_pidfile(path: str, program: bytes) -> None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    if not (program in _cmdline(pid) and _state(pid) not in ("Z", "X")):
        os.unlink(path)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def kill(node: LabNode) -> int:
    """SIGKILL the node's dockerd (a host losing its engine); returns the pid it had."""
    pid = wait_ready(node, 5)
    os.kill(pid, signal.SIGKILL)
    return pid


def start(lab: Lab, node: LabNode) -> None:
    """Start dockerd detached (`setsid -f`: not our child, so never our zombie)."""
    _clear_leftovers(node)
    with open(os.path.join(node.dir, "daemon.json"), "w") as f:
        json.dump(daemon_config(node), f)
    group = cgroups.make_daemons_group(lab.cgroup, node.name)
    args = cgroups.entered(group, ["setsid", "-f", *in_node(node, dockerd_command(lab, node))])
    with open(os.path.join(node.dir, "dockerd.log"), "ab") as log:
        subprocess.run(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True)


def wait_ready(node: LabNode, timeout: float = 30) -> int:
    """Wait until the engine answers; return dockerd's pid."""
    pidfile = os.path.join(node.dir, "dockerd.pid")
    log = os.path.join(node.dir, "dockerd.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(node.docker_socket):
            with open(pidfile) as f:
                return int(f.read())
        if "failed to start daemon" in _tail(log, 3):
            break
        time.sleep(0.1)
    else:
        raise LabError(f"{node.name}: dockerd did not answer within {timeout:.0f} s; "
                       f"last lines of {log}:\n{_tail(log)}")
    raise LabError(f"{node.name}: dockerd failed; last lines of {log}:\n{_tail(log)}")


def ping(sock_path: str, timeout: float = 2) -> bool:
    """True when the engine on this unix socket answers `GET /_ping` with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0] and reply.endswith(b"OK")


def remove_containers(node: LabNode) -> None:
    """Kill and remove every container, so dockerd can then stop at once and tidy up."""
    docker = ["docker", "-H", node.docker_host]
    ids = output([*docker, "ps", "-aq"], check=False, timeout=20).split()
    if ids:
        run([*docker, "rm", "-f", "-v", *ids], check=False, timeout=60)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"
