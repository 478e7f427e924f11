"""`extends`: a service built on another one, of the same file or of another (`file:`).

The extended service is resolved first (it may extend a third), then the
extending service is merged onto it with the usual merge rules. A file named
by `extends.file` is prepared like any Compose file, with its own directory as
the base of its relative paths. Cycles are reported, not followed.
"""

from __future__ import annotations

import os
from typing import Any

from swarmpy.compose.markers import mapping_in
from swarmpy.compose.merge import merge_service
from swarmpy.compose.project import Project, display_name


def resolve_extends(project: Project, document: dict, path: str, display: str) -> dict:
    """`document` with every service's `extends` resolved (a new mapping when there were any)."""
    services = document.get("services")
    if not isinstance(services, dict) or not any(_extends(s) for s in services.values()):
        return document
    resolver = _Resolver(project)
    resolved = {name: resolver.service(os.path.abspath(path), display, document, name) for name in services}
    return {**document, "services": resolved}


def _extends(service: Any) -> dict | None:
    extends = mapping_in(service).get("extends")
    return extends if isinstance(extends, dict) else None


class _Resolver:
    def __init__(self, project: Project):
        self.project = project
        self.done: dict[tuple[str, str], Any] = {}
        self.active: list[tuple[str, str]] = []  # services being resolved, for cycles

    def service(self, path: str, display: str, document: dict, name: str) -> Any:
        key = (path, name)
        if key in self.done:
            return self.done[key]
        service = document["services"][name]
        extends = _extends(service)
        if extends is None:
            return service
        where = ("services", name, "extends")
        if key in self.active:
            cycle = " -> ".join(n for _, n in self.active[self.active.index(key):] + [key])
            self.project.problems.add(display, where, f"extends cycle: {cycle}")
            return service
        base_path, base_display, base_document = path, display, document
        if extends.get("file"):
            base_path = extends["file"]
            base_display = display_name(base_path)
            base_document = self.project.prepare(base_path, base_display, os.path.dirname(base_path))
            if base_document is None:
                self.project.problems.add(display, where + ("file",), f"cannot read {base_display}")
                return service
        target = extends["service"]
        if target not in (base_document.get("services") or {}):
            found_in = f" in {base_display}" if base_path != path else ""
            self.project.problems.add(display, where + ("service",), f"service {target!r} not found{found_in}")
            return service
        self.active.append(key)
        base = self.service(os.path.abspath(base_path), base_display, base_document, target)
        self.active.pop()
        merged = merge_service(_without_extends(base), _without_extends(service))
        merged.pop("extends", None)
        self.done[key] = merged
        return merged


def _without_extends(service: Any) -> dict:
    return {k: v for k, v in mapping_in(service).items() if k != "extends"}
