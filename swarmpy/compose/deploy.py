"""A service's `deploy:` section -> DeploySpec, Swarm's defaults kept where the file is silent.

Partial `restart_policy`, `update_config` and `rollback_config` keep the
defaults (swarmpy.model) of the keys they leave out. The service-level keys the
specification ties to `deploy` (`scale`, `cpus`, `mem_limit`,
`mem_reservation`, `pids_limit`, `platform`) fill it in when it is silent,
and must agree with it when both are set.
"""

from __future__ import annotations

from typing import Any

from swarmpy.compose.placement import parse_constraint, parse_platform, parse_preference
from swarmpy.compose.project import Project
from swarmpy.compose.scalars import stringify_values
from swarmpy.compose.units import parse_bytes, parse_cpus, parse_duration
from swarmpy.model import DeploySpec, Placement, ResourceSet, Resources, RestartPolicy, UpdateConfig

GLOBAL_MODES = ("global", "global-job")
_DURATIONS = {"delay", "monitor", "window"}


def _pids(value: Any) -> int | None:
    """`pids_limit`: a whole number; -1 means no limit."""
    try:
        pids = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number of processes") from None
    if pids < -1:
        raise ValueError(f"{value!r} is not a number of processes (-1 for no limit)")
    return None if pids == -1 else pids


# service-level key -> where in deploy.resources it goes, and its parser
_SERVICE_LEVEL = {
    "cpus": ("limits", "cpus", parse_cpus),
    "mem_limit": ("limits", "memory", parse_bytes),
    "mem_reservation": ("reservations", "memory", parse_bytes),
    "pids_limit": ("limits", "pids", _pids),
}


def convert_deploy(project: Project, where: tuple, service: dict) -> DeploySpec:
    raw: dict = service.get("deploy") or {}
    at = where + ("deploy",)
    spec = DeploySpec(mode=raw.get("mode", "replicated"))
    if "replicas" in raw:
        if spec.mode in GLOBAL_MODES:
            project.problem(at + ("replicas",), f"replicas cannot be set with mode {spec.mode}")
        spec.replicas = raw["replicas"]
    if "scale" in service:
        if "replicas" in raw and raw["replicas"] != service["scale"]:
            project.problem(where + ("scale",), f"scale {service['scale']} differs from deploy.replicas {raw['replicas']}")
        elif spec.mode not in GLOBAL_MODES:
            spec.replicas = service["scale"]
    spec.endpoint_mode = raw.get("endpoint_mode", spec.endpoint_mode)
    spec.labels = stringify_values(raw.get("labels") or {})
    spec.placement = _placement(project, at + ("placement",), raw.get("placement") or {})
    if "platform" in service:
        platform = project.parsed(where + ("platform",), parse_platform, service["platform"])
        if platform is not None:
            spec.placement.platforms.append(platform)
    spec.resources = _resources(project, at + ("resources",), raw.get("resources") or {})
    _service_level_resources(project, where, service, spec)
    spec.restart_policy = _with_defaults(project, at + ("restart_policy",), RestartPolicy(), raw.get("restart_policy"))
    spec.update_config = _with_defaults(project, at + ("update_config",), UpdateConfig(), raw.get("update_config"))
    spec.rollback_config = _with_defaults(project, at + ("rollback_config",), UpdateConfig(), raw.get("rollback_config"))
    if spec.rollback_config.failure_action == "rollback":
        project.problem(at + ("rollback_config", "failure_action"), "a rollback cannot roll back: use pause or continue")
    return spec


def _placement(project: Project, at: tuple, raw: dict) -> Placement:
    placement = Placement(max_replicas_per_node=raw.get("max_replicas_per_node"))
    for index, text in enumerate(raw.get("constraints") or []):
        constraint = project.parsed(at + ("constraints", index), parse_constraint, text)
        if constraint is not None:
            placement.constraints.append(constraint)
    for index, preference in enumerate(raw.get("preferences") or []):
        parsed = project.parsed(at + ("preferences", index, "spread"), parse_preference, preference["spread"])
        if parsed is not None:
            placement.preferences.append(parsed)
    return placement


def _resources(project: Project, at: tuple, raw: dict) -> Resources:
    resources = Resources()
    for kind in ("limits", "reservations"):
        values = raw.get(kind) or {}
        target: ResourceSet = getattr(resources, kind)
        if "cpus" in values:
            target.cpus = project.parsed(at + (kind, "cpus"), parse_cpus, values["cpus"])
        if "memory" in values:
            target.memory = project.parsed(at + (kind, "memory"), parse_bytes, values["memory"])
        if "pids" in values:
            target.pids = values["pids"]
        for ignored in ("generic_resources", "devices"):
            if ignored in values:
                project.warning(at + (kind, ignored), "ignored by swarmpy (device and generic resource reservations are not supported)")
    return resources


def _service_level_resources(project: Project, where: tuple, service: dict, spec: DeploySpec) -> None:
    for key, (kind, name, parse) in _SERVICE_LEVEL.items():
        if key not in service:
            continue
        value = project.parsed(where + (key,), parse, service[key])
        target: ResourceSet = getattr(spec.resources, kind)
        current = getattr(target, name)
        if value is None:
            continue
        if current is None:
            setattr(target, name, value)
        elif current != value:
            project.problem(where + (key,), f"{key} {service[key]!r} differs from deploy.resources.{kind}.{name}")


def _with_defaults(project: Project, at: tuple, spec: Any, raw: dict | None) -> Any:
    """Swarm's defaults (the dataclass's), overridden by the keys the file sets."""
    for key, value in (raw or {}).items():
        if key.startswith("x-"):
            continue
        if key in _DURATIONS:
            value = project.parsed(at + (key,), parse_duration, value, getattr(spec, key))
        setattr(spec, key, value)
    return spec
