"""Canonical forms of the Compose shorthands, applied to each file before merging.

The specification lets many keys be written two ways (`environment` as a list
of `K=V` or as a mapping, `dns` as a string or a list, service `networks` as a
list or a mapping). Files that chose differently must still merge key by key,
so each file is brought to one form first: mappings for key/value things,
lists for the "string or list" keys. Runs after validation, so shapes are known.
"""

from __future__ import annotations

from typing import Any, Callable

from swarmpy.compose.files import Override, Reset

_KEY_VALUE = ("environment", "labels", "annotations", "sysctls", "storage_opt")
_STRING_OR_LIST = ("dns", "dns_search", "dns_opt", "tmpfs", "env_file", "label_file", "external_links",
                   "volumes_from", "security_opt", "profiles")
_NAMES_TO_MAPPING = ("networks", "depends_on", "models")
_SECTIONS = ("networks", "volumes", "secrets", "configs")


def normalize(document: dict) -> dict:
    """Canonical forms for one file's mapping (after validation); modifies and returns it."""
    for section in _SECTIONS:
        _apply(document, section, lambda entries: {k: ({} if v is None else v) for k, v in entries.items()})
        for entry in _mapping(document.get(section)).values():
            _apply(_mapping(entry), "labels", lambda v: _to_mapping(v, empty=""))
    for service in _mapping(document.get("services")).values():
        normalize_service(_mapping(service))
    return document


def normalize_service(service: dict) -> dict:
    for key in _KEY_VALUE:
        _apply(service, key, lambda v, k=key: _to_mapping(v, empty=None if k == "environment" else ""))
    for key in _STRING_OR_LIST:
        _apply(service, key, lambda v: [v] if isinstance(v, str) else v)
    for key in _NAMES_TO_MAPPING:
        _apply(service, key, lambda v: {name: None for name in v} if isinstance(v, list) else v)
    _apply(service, "extra_hosts", _hosts_to_list)
    _apply(service, "extends", lambda v: {"service": v} if isinstance(v, str) else v)
    deploy = _mapping(service.get("deploy"))
    _apply(deploy, "labels", lambda v: _to_mapping(v, empty=""))
    build = _mapping(service.get("build"))
    _apply(build, "args", lambda v: _to_mapping(v, empty=None))
    _apply(build, "labels", lambda v: _to_mapping(v, empty=""))
    return service


def _mapping(value: Any) -> dict:
    """The mapping behind a value, looking through `!override`; {} for anything else."""
    if isinstance(value, Override):
        value = value.value
    return value if isinstance(value, dict) else {}


def _apply(container: dict, key: str, change: Callable[[Any], Any]) -> None:
    if key not in container or container[key] is None or isinstance(container[key], Reset):
        return
    value = container[key]
    container[key] = Override(change(value.value)) if isinstance(value, Override) else change(value)


def _to_mapping(value: Any, empty: Any) -> Any:
    """["A=1", "B"] -> {"A": "1", "B": empty}; a mapping is kept."""
    if not isinstance(value, list):
        return value
    mapping: dict[str, Any] = {}
    for item in value:
        key, sep, rest = str(item).partition("=")
        mapping[key] = rest if sep else empty
    return mapping


def _hosts_to_list(value: Any) -> Any:
    """extra_hosts mapping {host: ip or [ips]} -> ["host=ip", ...]."""
    if not isinstance(value, dict):
        return value
    hosts = []
    for host, addresses in value.items():
        for address in addresses if isinstance(addresses, list) else [addresses]:
            hosts.append(f"{host}={address}")
    return hosts
