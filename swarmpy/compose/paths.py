"""Relative host paths made absolute, as `docker stack config` prints them.

Bind-mount sources, `env_file`, `label_file`, `extends.file`, `include` and
the `file` of secrets and configs are relative to a base directory: the
directory of the first Compose file for `-c` files (later files too, as the
specification says), the file's own directory for files reached by `extends`
or `include`. A cluster cannot resolve a relative path later, so it happens here.
"""

from __future__ import annotations

import os
from typing import Any

from swarmpy.compose.markers import change_value, mapping_in
from swarmpy.compose.mounts import is_host_path


class PathResolver:
    def __init__(self, base_dir: str, home: str | None):
        self.base_dir = base_dir
        self.home = home or os.path.expanduser("~")

    def __call__(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = self.home + path[1:]
        return os.path.normpath(os.path.join(self.base_dir, path))


def resolve_paths(document: dict, resolve: PathResolver) -> dict:
    """Make one normalized file's relative paths absolute; modifies and returns it."""
    for section in ("secrets", "configs"):
        for entry in mapping_in(document.get(section)).values():
            change_value(mapping_in(entry), "file", resolve)
    for service in mapping_in(document.get("services")).values():
        service = mapping_in(service)
        change_value(service, "volumes", lambda entries: [_volume(entry, resolve) for entry in entries])
        change_value(service, "env_file", lambda entries: [_file_entry(entry, "path", resolve) for entry in entries])
        change_value(service, "label_file", lambda entries: [resolve(entry) for entry in entries])
        change_value(mapping_in(service.get("extends")), "file", resolve)
    change_value(document, "include", lambda entries: [_include(entry, resolve) for entry in entries])
    return document


def _volume(entry: Any, resolve: PathResolver) -> Any:
    if isinstance(entry, str):
        source, sep, rest = entry.partition(":")
        if sep and source.startswith((".", "~")):
            return f"{resolve(source)}:{rest}"
        return entry
    if isinstance(entry, dict) and entry.get("type") == "bind" and isinstance(entry.get("source"), str):
        source = entry["source"]
        if not is_host_path(source) or source.startswith((".", "~")):
            return {**entry, "source": resolve(source)}
    return entry


def _file_entry(entry: Any, key: str, resolve: PathResolver) -> Any:
    if isinstance(entry, str):
        return resolve(entry)
    if isinstance(entry, dict) and isinstance(entry.get(key), str):
        return {**entry, key: resolve(entry[key])}
    return entry


def _include(entry: Any, resolve: PathResolver) -> Any:
    if isinstance(entry, str):
        return resolve(entry)
    if not isinstance(entry, dict):
        return entry
    entry = dict(entry)
    for key in ("path", "env_file"):
        value = entry.get(key)
        if isinstance(value, str):
            entry[key] = resolve(value)
        elif isinstance(value, list):
            entry[key] = [resolve(item) if isinstance(item, str) else item for item in value]
    if isinstance(entry.get("project_directory"), str):
        entry["project_directory"] = resolve(entry["project_directory"])
    return entry
