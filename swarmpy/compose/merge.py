"""Merging Compose files (`-c a.yml -c b.yml`) and `extends`, by the Compose Specification's rules.

Mappings merge key by key; sequences append; `command`, `entrypoint` and
`healthcheck.test` are replaced; `ports`, `volumes`, `secrets` and `configs`
merge by their unique key (a later entry for the same target replaces the
earlier one); other sequences append the entries not already present.
`!reset` removes a value, `!override` replaces it whole.

Both sides are expected in the canonical forms `normalize.py` produces
(environment and labels as mappings, service networks as a mapping, ...), so
that list-form and mapping-form files merge key by key.
"""

from __future__ import annotations

from typing import Any, Callable

from swarmpy.compose.markers import Override, Reset, strip_markers
from swarmpy.compose.mounts import volume_target
from swarmpy.compose.ports import port_key

_DELETE = object()

_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}


def _reference_key(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("target") or entry.get("source")
    return entry


_KEYED: dict[tuple, Callable[[Any], Any]] = {
    ("ports",): port_key,
    ("volumes",): volume_target,
    ("secrets",): _reference_key,
    ("configs",): _reference_key,
}


def merge(base: Any, override: Any, path: tuple = ()) -> Any:
    """`override` merged onto `base`; neither is modified."""
    result = _merge(base, override, path)
    return None if result is _DELETE else result


def merge_service(base: dict, override: dict) -> dict:
    """`extends`: the extending service (`override`) merged onto the one it extends."""
    return merge(base, override, ("services", "*"))


def _merge(base: Any, override: Any, path: tuple) -> Any:
    if isinstance(override, Reset):
        return _DELETE
    if isinstance(override, Override):
        return strip_markers(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            item = _merge(base[key], value, path + (key,)) if key in base else _strip_or_delete(value)
            if item is _DELETE:
                merged.pop(key, None)
            else:
                merged[key] = item
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return _merge_lists(base, strip_markers(override), _service_relative(path))
    return strip_markers(override)


def _strip_or_delete(value: Any) -> Any:
    return _DELETE if isinstance(value, Reset) else strip_markers(value)


def _service_relative(path: tuple) -> tuple:
    return path[2:] if len(path) > 2 and path[0] == "services" else ()


def _merge_lists(base: list, override: list, relative: tuple) -> list:
    if relative in _REPLACED:
        return list(override)
    key = _KEYED.get(relative)
    if key is not None:
        positions = {key(entry): index for index, entry in enumerate(base)}
        merged = list(base)
        for entry in override:
            index = positions.get(key(entry))
            if index is None:
                positions[key(entry)] = len(merged)
                merged.append(entry)
            else:
                merged[index] = entry
        return merged
    return list(base) + [entry for entry in override if entry not in base]
