"""One cgroup tree per lab, so that `down` finds every process the lab made.

A node's dockerd and sshd are started inside `<lab cgroup>/<node>/daemons`
of the pids hierarchy, and everything they fork stays there (containerd,
shims, SSH sessions). Containers go to `<lab cgroup>/<node>/containers`
(dockerd's `--cgroup-parent`), in every hierarchy, so two labs never mix.
"""

from __future__ import annotations

import os

MOUNT = "/sys/fs/cgroup"


def _tracking_root() -> str | None:
    """The hierarchy that sees all processes: v1's `pids`, else the v2 unified root."""
    for path in (os.path.join(MOUNT, "pids"), MOUNT):
        if os.path.exists(os.path.join(path, "cgroup.procs")):
            return path
    return None


def daemons_path(cgroup: str, node: str) -> str | None:
    root = _tracking_root()
    return os.path.join(root, cgroup, node, "daemons") if root else None


def container_parent(cgroup: str, node: str) -> str:
    """dockerd's `--cgroup-parent` (absolute, for the cgroupfs driver)."""
    return f"/{cgroup}/{node}/containers"


def make_daemons_group(cgroup: str, node: str) -> str | None:
    path = daemons_path(cgroup, node)
    if path:
        os.makedirs(path, exist_ok=True)
    return path


def entered(path: str | None, args: list[str]) -> list[str]:
    """`args`, run by a shell that first moves itself into the cgroup at `path`.

    (A shell rather than `preexec_fn`: the lab starts nodes from threads.)
    """
    if not path:
        return args
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', os.path.join(path, "cgroup.procs"), *args]


def _hierarchies() -> list[str]:
    """The v2 root alone, or each v1 hierarchy mounted under it (hybrid: with `unified`)."""
    if os.path.exists(os.path.join(MOUNT, "cgroup.procs")):
        return [MOUNT]
    if not os.path.isdir(MOUNT):
        return []
    paths = (os.path.join(MOUNT, entry) for entry in sorted(os.listdir(MOUNT)))
    return [p for p in paths if os.path.exists(os.path.join(p, "cgroup.procs"))]


def pids(cgroup: str) -> set[int]:
    """Every process in the lab's tree, in any hierarchy."""
    found: set[int] = set()
    for hierarchy in _hierarchies():
        for dirpath, _, files in os.walk(os.path.join(hierarchy, cgroup)):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        found.update(int(p) for p in f.read().split())
                except OSError:
                    pass
    return found


def remove(cgroup: str) -> list[str]:
    """rmdir the lab's tree in every hierarchy, deepest first; return what stayed."""
    left = []
    for hierarchy in _hierarchies():
        top = os.path.join(hierarchy, cgroup)
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(dirpath)
    return left


def leftovers(cgroup: str) -> list[str]:
    return [os.path.join(h, cgroup) for h in _hierarchies() if os.path.exists(os.path.join(h, cgroup))]
