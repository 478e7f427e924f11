"""Service volumes (short `src:dst:ro` and long syntax) and `tmpfs:` entries -> `Mount`s.

Relative bind sources were made absolute by `paths.py` before this runs.
"""

from __future__ import annotations

from typing import Any

from swarmpy.compose.units import parse_bytes
from swarmpy.model import Mount

MOUNT_TYPES = ("bind", "volume", "tmpfs")
PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
CONSISTENCIES = ("consistent", "cached", "delegated")
SELINUX = ("z", "Z")


def is_host_path(source: str) -> bool:
    """A short-syntax source that names a host path (a bind) rather than a volume."""
    return source.startswith(("/", ".", "~")) or (len(source) > 2 and source[1:3] == ":\\" and source[0].isalpha())


def parse_volume(entry: Any) -> Mount:
    """One `volumes:` entry of a service -> Mount. Raises ValueError for the user."""
    if isinstance(entry, str):
        return _parse_short(entry)
    if isinstance(entry, dict):
        return _parse_long(entry)
    raise ValueError(f"{entry!r} is not a volume")


def volume_target(entry: Any) -> Any:
    """What makes two entries the same mount when files merge: the target path."""
    if isinstance(entry, dict):
        return entry.get("target")
    try:
        return parse_volume(entry).target
    except ValueError:
        return repr(entry)


def _parse_short(text: str) -> Mount:
    parts = text.split(":")
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].startswith("\\"):  # C:\data
        parts = [parts[0] + ":" + parts[1]] + parts[2:]
    if len(parts) == 1:
        return Mount(type="volume", target=_target(parts[0]))
    if len(parts) > 3:
        raise ValueError(f"{text!r} is not SOURCE:TARGET[:MODE]")
    source, target = parts[0], _target(parts[1])
    if not source:
        raise ValueError(f"{text!r}: the source is empty")
    mount = Mount(type="bind" if is_host_path(source) else "volume", source=source, target=target)
    for option in (parts[2].split(",") if len(parts) == 3 else []):
        if option in ("ro", "rw"):
            mount.read_only = option == "ro"
        elif option == "nocopy" and mount.type == "volume":
            mount.volume_nocopy = True
        elif option in PROPAGATIONS and mount.type == "bind":
            mount.bind_propagation = option
        elif option in CONSISTENCIES:
            mount.consistency = option
        elif option in SELINUX and mount.type == "bind":
            pass  # SELinux relabelling: Swarm services have no such option; harmless
        else:
            raise ValueError(f"{text!r}: unknown mode {option!r}")
    return mount


def _parse_long(entry: dict) -> Mount:
    kind = entry.get("type")
    if kind not in MOUNT_TYPES:
        raise ValueError(f"mount type {kind!r} is not supported by swarmpy (bind, volume or tmpfs)")
    target = _target(entry.get("target") or "")
    source = entry.get("source") or None
    if kind == "bind" and not source:
        raise ValueError("a bind mount needs a source")
    if kind == "tmpfs" and source:
        raise ValueError("a tmpfs mount takes no source")
    mount = Mount(type=kind, target=target, source=source, read_only=bool(entry.get("read_only", False)))
    mount.consistency = entry.get("consistency")
    bind, volume, tmpfs = (entry.get(key) or {} for key in ("bind", "volume", "tmpfs"))
    if bind:
        mount.bind_propagation = bind.get("propagation")
        mount.bind_create_host_path = bool(bind.get("create_host_path", True))
    if volume:
        mount.volume_nocopy = bool(volume.get("nocopy", False))
    if tmpfs:
        if tmpfs.get("size") is not None:
            mount.tmpfs_size = parse_bytes(tmpfs["size"])
        if tmpfs.get("mode") is not None:
            mount.tmpfs_mode = _mode(tmpfs["mode"])
    return mount


def parse_tmpfs(text: str) -> Mount:
    """A `tmpfs:` entry, `/run` or `/data:mode=755,size=64m` -> tmpfs Mount."""
    target, _, options = text.partition(":")
    mount = Mount(type="tmpfs", target=_target(target))
    for option in filter(None, options.split(",")):
        name, _, value = option.partition("=")
        if name == "size":
            mount.tmpfs_size = parse_bytes(value)
        elif name == "mode":
            mount.tmpfs_mode = _mode(value)
        elif name not in ("uid", "gid"):
            raise ValueError(f"{text!r}: unknown tmpfs option {name!r} (size, mode, uid, gid)")
    return mount


def _mode(value: Any) -> int:
    """A file mode: YAML's octal int (0755 was read as 493), or text like "755"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise ValueError(f"{value!r} is not a file mode (octal, like 0755)") from None


def _target(path: str) -> str:
    if not path or not (path.startswith("/") or (len(path) > 1 and path[1] == ":")):
        raise ValueError(f"the target {path!r} must be an absolute path in the container")
    return path
