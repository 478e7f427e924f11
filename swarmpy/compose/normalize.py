"""Canonical forms of the Compose shorthands, applied to each file before merging.

The specification lets many keys be written two ways (`environment` as a list
of `K=V` or as a mapping, `dns` as a string or a list, service `networks` as a
list or a mapping). Files that chose differently must still merge key by key,
so each file is brought to one form first: mappings for key/value things,
lists for the "string or list" keys. Runs after validation, so shapes are known.
"""

from __future__ import annotations

from typing import Any

from swarmpy.compose.markers import change_value, mapping_in

_KEY_VALUE = ("environment", "labels", "annotations", "sysctls", "storage_opt")
_STRING_OR_LIST = ("dns", "dns_search", "dns_opt", "tmpfs", "env_file", "label_file", "external_links",
                   "volumes_from", "security_opt", "profiles")
_NAMES_TO_MAPPING = ("networks", "depends_on", "models")
_SECTIONS = ("networks", "volumes", "secrets", "configs")


def normalize(document: dict) -> dict:
    """Canonical forms for one file's mapping (after validation); modifies and returns it."""
    for section in _SECTIONS:
        change_value(document, section, lambda entries: {k: ({} if v is None else v) for k, v in entries.items()})
        for entry in mapping_in(document.get(section)).values():
            change_value(mapping_in(entry), "labels", lambda v: _to_mapping(v, empty=""))
    for service in mapping_in(document.get("services")).values():
        normalize_service(mapping_in(service))
    return document


def normalize_service(service: dict) -> dict:
    for key in _KEY_VALUE:
        change_value(service, key, lambda v, k=key: _to_mapping(v, empty=None if k == "environment" else ""))
    for key in _STRING_OR_LIST:
        change_value(service, key, lambda v: [v] if isinstance(v, str) else v)
    for key in _NAMES_TO_MAPPING:
        change_value(service, key, lambda v: {name: None for name in v} if isinstance(v, list) else v)
    change_value(service, "extra_hosts", _hosts_to_list)
    change_value(service, "extends", lambda v: {"service": v} if isinstance(v, str) else v)
    deploy = mapping_in(service.get("deploy"))
    change_value(deploy, "labels", lambda v: _to_mapping(v, empty=""))
    build = mapping_in(service.get("build"))
    change_value(build, "args", lambda v: _to_mapping(v, empty=None))
    change_value(build, "labels", lambda v: _to_mapping(v, empty=""))
    return service


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
