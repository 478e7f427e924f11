"""The merged Compose mapping -> StackSpec, with the checks that need the whole stack.

Top-level networks, volumes, secrets and configs become NetworkSpec,
VolumeSpec and ObjectSpec; services go through service.py. Then every name a
service refers to must be declared (the `default` network is implicit), and
`depends_on` must name services of the stack without a cycle: Compose refuses
such files, so swarmpy does too even though it ignores `depends_on` itself.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from swarmpy.compose.mounts import parse_volume
from swarmpy.compose.project import Project
from swarmpy.compose.scalars import stringify_values
from swarmpy.compose.service import convert_service
from swarmpy.model import NetworkSpec, ObjectSpec, StackSpec, VolumeSpec

_EXTERNAL_ONLY = {"name", "external"}


def convert_stack(project: Project, merged: dict, name: str | None) -> StackSpec:
    stack = StackSpec(name=name or merged.get("name") or None)
    if merged.get("models"):
        project.warning(("models",), "ignored by swarmpy (AI models are run by docker compose only)")
    for key, raw in (merged.get("networks") or {}).items():
        stack.networks[key] = NetworkSpec(**_resource(project, ("networks", key), raw, NetworkSpec))
    for key, raw in (merged.get("volumes") or {}).items():
        stack.volumes[key] = VolumeSpec(**_resource(project, ("volumes", key), raw, VolumeSpec))
    for kind in ("secrets", "configs"):
        objects = getattr(stack, kind)
        for key, raw in (merged.get(kind) or {}).items():
            objects[key] = _object(project, (kind, key), raw)
    for service_name, raw in (merged.get("services") or {}).items():
        stack.services[service_name] = convert_service(project, service_name, raw)
        _check_references(project, stack, service_name, raw)
    _check_dependencies(project, merged.get("services") or {})
    return stack


def _resource(project: Project, at: tuple, raw: dict, spec_type: type) -> dict[str, Any]:
    """Fields of a NetworkSpec/VolumeSpec; keys swarmpy has no field for are warned about."""
    raw = {k: v for k, v in (raw or {}).items() if not k.startswith("x-")}
    fields = dict(raw)
    external = fields.pop("external", False)
    if isinstance(external, dict):  # the old `external: {name: x}` form
        project.warning(at + ("external", "name"), "deprecated: write `name:` beside `external: true`")
        fields.setdefault("name", external.get("name"))
        external = True
    if external:
        extra = sorted(set(raw) - _EXTERNAL_ONLY)
        if extra:
            project.problem(at + (extra[0],), "an external resource is created elsewhere: only `name` may go with `external`")
    known = {f for f in spec_type.__dataclass_fields__}
    for key in sorted(set(fields) - known):
        project.warning(at + (key,), "ignored by swarmpy (not supported)")
        fields.pop(key)
    for key in ("driver_opts", "labels"):
        if key in fields:
            fields[key] = stringify_values(fields[key] or {})
    fields["external"] = bool(external)
    if fields.get("name") is None:
        fields.pop("name", None)
        if external:  # an external resource is found by its own name, never a stack-prefixed one
            fields["name"] = at[-1]
    return fields


def _object(project: Project, at: tuple, raw: dict) -> ObjectSpec:
    """A secret or config. A file must exist (its content is read at deploy time, never printed);
    an environment variable must be set; `content` (configs) is kept as base64 data."""
    fields = _resource(project, at, {k: v for k, v in raw.items() if k not in ("file", "environment", "content")},
                       ObjectSpec)
    spec = ObjectSpec(**fields)
    sources = [key for key in ("file", "environment", "content") if raw.get(key) is not None]
    if spec.external:
        sources += ["external"]
    if len(sources) != 1:
        found = f"found {', '.join(sources)}" if sources else "found none"
        allowed = "file, environment, content or external" if at[0] == "configs" else "file, environment or external"
        project.problem(at, f"needs exactly one source of {allowed} ({found})")
    if raw.get("file") is not None:
        spec.file = raw["file"]
        if not os.path.exists(spec.file):
            project.problem(at + ("file",), f"file not found: {spec.file}")
    if raw.get("environment") is not None:
        spec.environment = raw["environment"]
        if project.lookup(spec.environment) is None:
            project.problem(at + ("environment",), f"variable {spec.environment} is not set")
    if raw.get("content") is not None:
        spec.data = base64.b64encode(str(raw["content"]).encode()).decode()
    return spec


def _check_references(project: Project, stack: StackSpec, service: str, raw: dict) -> None:
    where = ("services", service)
    for network in raw.get("networks") or {}:
        if network != "default" and network not in stack.networks:
            project.problem(where + ("networks", network), f"network {network!r} is not declared under top-level networks")
    for index, entry in enumerate(raw.get("volumes") or []):
        try:
            mount = parse_volume(entry)
        except ValueError:
            continue  # reported by the service's conversion
        if mount.type == "volume" and mount.source and mount.source not in stack.volumes:
            project.problem(where + ("volumes", index), f"volume {mount.source!r} is not declared under top-level volumes")
    for kind in ("secrets", "configs"):
        declared = getattr(stack, kind)
        for index, reference in enumerate(getattr(stack.services[service], kind)):
            if reference.source not in declared:
                project.problem(where + (kind, index), f"{kind[:-1]} {reference.source!r} is not declared under top-level {kind}")


def _check_dependencies(project: Project, services: dict) -> None:
    graph = {name: list((raw.get("depends_on") or {}).keys()) for name, raw in services.items()}
    for name, needs in graph.items():
        for needed in needs:
            if needed not in graph:
                project.problem(("services", name, "depends_on", needed), f"service {needed!r} is not in the stack")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for needed in graph.get(name, []):
            if state.get(needed) == 1:
                cycle = " -> ".join(trail[trail.index(needed):] + [needed])
                project.problem(("services", name, "depends_on", needed), f"dependency cycle: {cycle}")
            elif needed in graph and not state.get(needed):
                visit(needed, trail + [needed])
        state[name] = 2

    for name in graph:
        if not state.get(name):
            visit(name, [name])
