"""A node's own sshd, with keys, known_hosts and ssh config the lab generates.

Nodes share this machine's files, so each sshd gets its own config, host
key and pid file under the node's directory; nothing in /root/.ssh is read
or written. Logins get DOCKER_HOST set to the node's own engine.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time

from swarmpy.lab import cgroups
from swarmpy.lab.engine import in_node
from swarmpy.lab.shell import LabError, run
from swarmpy.lab.state import Lab, LabNode

SSHD = "/usr/sbin/sshd"  # sshd refuses to run unless started by its absolute path
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Nodes share this machine's files, root's home included: its login scripts would run in every SSH
# session into a node (bash reads .bashrc for sshd's commands too), and this machine's (`pyenv init`,
# say) can be slow or hang. Each node's sshd runs in a mount namespace of its own where they are
# empty files: a node's SSH sessions never depend on how this machine's shell is set up.
LOGIN_SCRIPTS = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".bash_logout")


def keygen(path: str, comment: str) -> None:
    if not os.path.exists(path):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])


def host_key(node: LabNode) -> str:
    return os.path.join(node.dir, "ssh_host_ed25519_key")


def state_root(node: LabNode) -> str:
    return os.path.join(node.dir, "swarmpy")


def run_root(node: LabNode) -> str:
    """Where swarmpy keeps a host's secrets (SWARMPY_RUN_ROOT): a tmpfs of the node's own, as /run
    is on a host with systemd (nodes share this machine's /run, which need not be one)."""
    return os.path.join(node.dir, "tmpfs")


def mount_run_root(node: LabNode) -> None:
    path = run_root(node)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not os.path.ismount(path):
        run(["mount", "-t", "tmpfs", "-o", "mode=0700,size=64m", f"lab-{node.name}-tmpfs", path])


def session_path() -> str:
    """PATH for SSH sessions: this Python's bin first, where the `swarmpy` script is."""
    return f"{os.path.dirname(sys.executable)}:{_SYSTEM_PATH}"


def config_text(lab: Lab, node: LabNode) -> str:
    return "\n".join([
        f"# sshd of lab {lab.name} {node.name}; started in netns {node.netns}",
        f"ListenAddress {node.address}:{node.ssh_port}",
        f"HostKey {host_key(node)}",
        f"AuthorizedKeysFile {os.path.join(lab.dir, 'authorized_keys')}",
        f"PidFile {os.path.join(node.dir, 'sshd.pid')}",
        "StrictModes no",  # the lab's files are not in a home directory
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UseDNS no",
        "PrintMotd no",
        "MaxStartups 100",
        "MaxSessions 100",
        # what swarmpy keeps on a host (a promoted manager's state) stays in the node's own directory
        f"SetEnv DOCKER_HOST={node.docker_host} PATH={session_path()} SWARMPY_STATE_ROOT={state_root(node)} "
        f"SWARMPY_RUN_ROOT={run_root(node)}",
        "Subsystem sftp internal-sftp",
        "",
    ])


def start(lab: Lab, node: LabNode, timeout: float = 10) -> int:
    """Start sshd in the node's namespaces; return its pid once it answers."""
    keygen(host_key(node), f"{lab.name}-{node.name}")
    mount_run_root(node)  # before sshd: its mount namespace gets a copy of the host's mounts
    config = os.path.join(node.dir, "sshd_config")
    with open(config, "w") as f:
        f.write(config_text(lab, node))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    group = cgroups.make_daemons_group(lab.cgroup, node.name)
    log = os.path.join(node.dir, "sshd.log")
    # sshd forks into the background itself: its parent exits at once.
    run(cgroups.entered(group, in_node(node, clean_home(node, [SSHD, "-f", config, "-E", log]))), timeout=timeout)
    pidfile = os.path.join(node.dir, "sshd.pid")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(pidfile) and answers(node.address, node.ssh_port):
            with open(pidfile) as f:
                return int(f.read())
        time.sleep(0.05)
    raise LabError(f"{node.name}: sshd did not answer on {node.address}:{node.ssh_port}; see {log}")


def clean_home(node: LabNode, args: list[str]) -> list[str]:
    """`args` run in a new mount namespace where root's login scripts are the node's own empty files
    (mounts there do not reach this machine's: propagation is one way, in)."""
    empty = os.path.join(node.dir, "empty-login-script")
    open(empty, "w").close()
    home = os.path.expanduser("~root")
    mask = " ".join(shlex.quote(os.path.join(home, name)) for name in LOGIN_SCRIPTS)
    script = (f'for f in {mask}; do [ -f "$f" ] && mount --bind {shlex.quote(empty)} "$f"; done; exec "$@"')
    return ["unshare", "--mount", "--propagation", "slave", "sh", "-c", script, "sh", *args]


def answers(address: str, port: int, timeout: float = 2) -> bool:
    """True when an SSH server greets on address:port (`SSH-2.0-...`)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            return s.recv(256).startswith(b"SSH-")
    except OSError:
        return False


def write_client_files(lab: Lab) -> None:
    """The client key (authorized on every node), known_hosts, ssh_config and an `ssh` wrapper."""
    keygen(lab.identity, f"swarmpy-lab-{lab.name}")
    with open(lab.identity + ".pub") as f:
        public = f.read()
    _write(os.path.join(lab.dir, "authorized_keys"), public)

    known = []
    for node in lab.nodes:
        with open(host_key(node) + ".pub") as f:
            key_type, key = f.read().split()[:2]
        known.append(f"{node.address} {key_type} {key}\n")
    _write(lab.known_hosts, "".join(known))

    blocks = [f"# ssh -F {lab.ssh_config} node1\n"]
    for node in lab.nodes:
        blocks.append(
            f"Host {node.name} {node.address}\n"
            f"    HostName {node.address}\n"
            f"    Port {node.ssh_port}\n"
            f"    User root\n"
            f"    IdentityFile {lab.identity}\n"
            f"    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {lab.known_hosts}\n"
            f"    StrictHostKeyChecking yes\n"
        )
    _write(lab.ssh_config, "".join(blocks))

    # `docker -H ssh://...` runs `ssh` from PATH and has no option for a config file.
    os.makedirs(lab.bin_dir, exist_ok=True)
    wrapper = os.path.join(lab.bin_dir, "ssh")
    _write(wrapper, f'#!/bin/sh\nexec /usr/bin/ssh -F {lab.ssh_config} "$@"\n')
    os.chmod(wrapper, 0o755)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
