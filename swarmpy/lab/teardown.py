"""`lab down`: remove every process, mount, namespace, link, rule and file of a lab.

It works from the names derived from the lab's name as well as from the
recorded state, so it also cleans up after an `up` that crashed halfway, and
it is quiet about whatever is already gone, so running it twice is fine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import time

from swarmpy.lab import cgroups, engine, network
from swarmpy.lab.shell import LabError, on_each, output, run
from swarmpy.lab.state import Lab, LabNode, bridge_name, cgroup_name, check_name, is_node_netns, lab_dir

_DOCKERD_STOP_TIMEOUT = 10
_SHIM_SOCKETS = "/run/containerd/s"  # shared by every containerd on this machine


def down(name: str, progress=None) -> bool:
    """Take the lab down; False when there was nothing of it to remove."""
    say = progress or (lambda message: None)
    directory = str(lab_dir(check_name(name)))
    try:
        lab = Lab.load(name)
    except LabError:
        lab = None
    bridge = lab.bridge if lab else bridge_name(name)
    cgroup = lab.cgroup if lab else cgroup_name(name)
    netnses = sorted({ns for ns in network.netns_list() if is_node_netns(name, ns)}
                     | {n.netns for n in (lab.nodes if lab else []) if os.path.exists(f"/run/netns/{n.netns}")})
    found = bool(lab or netnses or os.path.exists(directory) or network.link_exists(bridge)
                 or network.forwarding_rules(bridge) or cgroups.leftovers(cgroup))
    if not found:
        return False

    if lab:
        on_each(_stop_engine, lab.nodes)
    killed = kill_processes(directory, cgroup, netnses, lab)
    if killed:
        say(f"stopped {killed} processes")
    unmounted = unmount_under(directory)
    if unmounted:
        say(f"unmounted {unmounted} mounts")
    for netns in netnses:
        network.delete_netns(netns)
    for link in _links_on(bridge):
        network.delete_link(link)
    network.delete_link(bridge)
    network.remove_forwarding(bridge, cgroup)
    left = cgroups.remove(cgroup)
    if left:
        raise LabError(f"could not remove cgroups {', '.join(left)}: processes still in them?")
    shutil.rmtree(directory, ignore_errors=True)
    if os.path.exists(directory):
        raise LabError(f"could not remove {directory}: {os.listdir(directory)}")
    say(f"lab {name} removed")
    return True


def _stop_engine(node: LabNode) -> None:
    """Let a live dockerd stop cleanly (it unmounts and tidies its own state); kill it otherwise."""
    if not node.pid_dockerd or not engine.ping(node.docker_socket):
        return
    try:
        engine.remove_containers(node)
    except LabError:
        return  # a hung engine: the kill that follows deals with it
    if _signal(node.pid_dockerd, signal.SIGTERM, node.dir):
        deadline = time.monotonic() + _DOCKERD_STOP_TIMEOUT
        while time.monotonic() < deadline and _is_lab_process(node.pid_dockerd, node.dir):
            time.sleep(0.1)


def kill_processes(directory: str, cgroup: str, netnses: list[str], lab: Lab | None,
                   timeout: float = 15) -> int:
    """SIGKILL the lab's processes until none is left: by cgroup, netns, recorded pid and command line."""
    spare = _self_and_ancestors()
    killed: set[int] = set()
    sockets: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        inside = cgroups.pids(cgroup)
        for netns in netnses:
            inside.update(network.netns_pids(netns))
        if inside & spare:
            raise LabError("lab down runs inside the lab (in a node's SSH session?): run it from this machine")
        pids = inside | (_pids_mentioning(directory) - spare)
        for node in lab.nodes if lab else []:
            for pid in (node.pid_dockerd, node.pid_sshd):
                if pid and _is_lab_process(pid, directory):
                    pids.add(pid)
        if not pids:
            for path in sockets:
                if os.path.exists(path):
                    os.remove(path)
            return len(killed)
        if time.monotonic() > deadline:
            raise LabError(f"processes of the lab would not die: {sorted(pids)}")
        sockets.update(filter(None, map(_shim_socket, pids)))
        for pid in pids:
            if _signal(pid, signal.SIGKILL):
                killed.add(pid)
        time.sleep(0.1)


def _shim_socket(pid: int) -> str | None:
    """The socket a containerd shim leaves in /run/containerd/s when it is killed.

    containerd (1.6) names it sha256(<containerd address>/<namespace>/<id>).
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "containerd-shim" not in os.path.basename(argv[0]):
        return None
    flags = dict(zip(argv, argv[1:]))
    if not {"-namespace", "-id", "-address"} <= flags.keys():
        return None
    key = os.path.join(flags["-address"], flags["-namespace"], flags["-id"])
    return os.path.join(_SHIM_SOCKETS, hashlib.sha256(key.encode()).hexdigest())


def unmount_under(directory: str) -> int:
    """Unmount everything under `directory`, deepest first; lazily when a mount is busy."""
    count = 0
    for attempt in range(5):
        mounts = mounts_under(directory)
        if not mounts:
            return count
        for mount_point in sorted(mounts, key=lambda m: (-m.count("/"), m)):
            lazy = ["-l"] if attempt >= 2 else []
            if run(["umount", *lazy, "--", mount_point], check=False).returncode == 0:
                count += 1
    left = mounts_under(directory)
    if left:
        raise LabError(f"could not unmount: {', '.join(left)}")
    return count


def mounts_under(directory: str) -> list[str]:
    """Mount points at or under `directory`, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == directory or point.startswith(directory + "/"):
                found.append(point)
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _links_on(bridge: str) -> list[str]:
    if not network.link_exists(bridge):
        return []
    links = json.loads(output(["ip", "-j", "link", "show", "master", bridge]) or "[]")
    return [link["ifname"] for link in links]


def _pids_mentioning(directory: str) -> set[int]:
    """Processes whose command line names the lab's directory (dockerd, containerd, shims, sshd)."""
    needle = (directory + "/").encode()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.add(int(entry))
            except OSError:
                pass
    return found


def _is_lab_process(pid: int, directory: str) -> bool:
    """True when `pid` is alive and still one of the lab's (pids are reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return (directory + "/").encode() in f.read()
    except OSError:
        return False


def _signal(pid: int, sig: int, directory: str | None = None) -> bool:
    if directory and not _is_lab_process(pid, directory):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _self_and_ancestors() -> set[int]:
    """Never kill the process running `down`, nor its parents (say, an SSH session into a node)."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return pids
