"""A task's secrets on its host: in memory, never on a disk.

As Swarm does, each secret is a file on a tmpfs of the host, bind-mounted
read-only at its target in the container: the plaintext never reaches the
container's writable layer (which is on the engine's disk and outlives the
task). The files live in `<root>/<cluster id>/<task id>/`, where the root is
`$SWARMPY_RUN_ROOT` as the host's sessions set it, else `/run/swarmpy`. The
cluster's folder must be on a tmpfs: where it is not (a host whose /run is a
plain folder), a tmpfs of the cluster's own is mounted there.

They go when the task stops (`stop_task`), with a sweep of the folders of
tasks that ended on their own at the next start on that host, and all at once
when the node leaves the cluster (`remove_all`). Content travels over SFTP (or
is written here for this machine's engine), never on a command line.
"""

from __future__ import annotations

import os
import posixpath
import shlex

from swarmpy.model import FileReference
from swarmpy.network.host import HostShell

DEFAULT_ROOT = "/run/swarmpy"
TMPFS_SIZE = "64m"


class NoTmpfs(RuntimeError):
    """The host has no memory-backed place for secrets: the task is not started."""


def _root(cluster_id: str) -> str:
    """The cluster's folder, as a shell word the host expands."""
    return f'"${{SWARMPY_RUN_ROOT:-{DEFAULT_ROOT}}}"/{shlex.quote(cluster_id)}'


def cluster_dir(shell: HostShell, cluster_id: str) -> str:
    """The cluster's folder for secrets on the host, on a tmpfs (mounted if need be)."""
    root = _root(cluster_id)
    code, out = shell.run(
        f'd={root}; mkdir -p "$d" && chmod 700 "$d" || exit 1\n'
        f'[ "$(stat -f -c %T "$d")" = tmpfs ] || mount -t tmpfs -o mode=0700,size={TMPFS_SIZE} '
        f'swarmpy-secrets "$d" || exit 1\n'
        f'echo "$(stat -f -c %T "$d") $d"')
    kind, _, path = out.strip().rpartition("\n")[2].partition(" ")
    if code != 0 or kind != "tmpfs" or not path.startswith("/"):
        raise NoTmpfs(f"no tmpfs for secrets on this host ({out.strip()[-200:]})")
    return path


def place(shell: HostShell, session, cluster_id: str, task_id: str,
          secrets: list[tuple[str, bytes, FileReference]]) -> list[dict]:
    """Write the task's secrets to its folder; the bind mounts that give them to its container.
    `session`: the host's SSH session (None: this machine)."""
    if not secrets:
        return []
    folder = posixpath.join(cluster_dir(shell, cluster_id), task_id)
    files = {posixpath.join(folder, str(i)): (data, ref) for i, (_, data, ref) in enumerate(secrets)}
    if session is None:
        _write_here(folder, files)
    else:
        _write_over_sftp(session, folder, files)
    return [{"Type": "bind", "Source": path, "Target": target, "ReadOnly": True}
            for path, (target, _, _) in zip(files, secrets)]


def _write_here(folder: str, files: dict[str, tuple[bytes, FileReference]]) -> None:
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for path, (data, ref) in files.items():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chown(path, int(ref.uid or 0), int(ref.gid or 0))
        os.chmod(path, ref.mode)


def _write_over_sftp(session, folder: str, files: dict[str, tuple[bytes, FileReference]]) -> None:
    sftp = session.open_sftp()
    try:
        try:
            sftp.mkdir(folder, 0o700)
        except OSError:
            pass  # an earlier attempt made it
        for path, (data, ref) in files.items():
            with sftp.open(path, "wb") as f:
                f.chmod(0o600)
                f.write(data)
            sftp.chown(path, int(ref.uid or 0), int(ref.gid or 0))
            sftp.chmod(path, ref.mode)
    finally:
        sftp.close()


def remove(shell: HostShell, cluster_id: str, task_ids: list[str]) -> None:
    """The folders of these tasks, if any."""
    if task_ids:
        root = _root(cluster_id)
        shell.run(f"cd {root} 2>/dev/null && rm -rf -- {' '.join(shlex.quote(t) for t in task_ids)}; true")


def present(shell: HostShell, cluster_id: str) -> list[str]:
    """The tasks with a folder on the host."""
    root = _root(cluster_id)
    code, out = shell.run(f"ls -1 {root} 2>/dev/null; true")
    return [line for line in out.split() if line]


def remove_all(shell: HostShell, cluster_id: str) -> None:
    """Everything of the cluster's on the host: its tmpfs, if it mounted one, and the folder."""
    root = _root(cluster_id)
    shell.run(f'd={root}; if mountpoint -q "$d"; then umount "$d"; fi; rm -rf -- "$d"; true')
