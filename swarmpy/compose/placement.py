"""Placement constraints and preferences in Swarm's syntax.

A constraint is `<field> == <value>` or `<field> != <value>` over the node
attributes Swarm knows (DESIGN.md). Anything else (`node.role=manager`,
`>=`, an unknown field) would leave a service unschedulable or silently
unconstrained at deploy time, so it is refused here with the reason.
"""

from __future__ import annotations

import re

from swarmpy.model import Constraint, Platform, Preference

NODE_FIELDS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
LABEL_PREFIXES = ("node.labels.", "engine.labels.")
ROLES = ("manager", "worker")
_OPERATOR = re.compile(r"==|!=")
_FIELDS_HELP = "node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<key>, engine.labels.<key>"


def parse_constraint(text: str) -> Constraint:
    """`node.labels.zone == b` -> Constraint("node.labels.zone", "==", "b")."""
    match = _OPERATOR.search(text)
    if not match:
        raise ValueError(f"{text!r} is not a constraint: write <field> == <value> or <field> != <value>")
    value = text[match.end():].strip()
    if not value or _OPERATOR.search(value) or value.startswith("="):
        raise ValueError(f"{text!r} is not a constraint: write <field> == <value> or <field> != <value>")
    field = check_field(text[: match.start()].strip())
    if field == "node.role" and value.lower() not in ROLES:
        raise ValueError(f"{text!r}: node.role is manager or worker, not {value!r}")
    return Constraint(field, match.group(0), value)


def check_field(field: str) -> str:
    """A node attribute as Swarm names it; known prefixes are case-insensitive, label keys are not."""
    lowered = field.lower()
    if lowered in NODE_FIELDS:
        return lowered
    for prefix in LABEL_PREFIXES:
        if lowered.startswith(prefix) and len(field) > len(prefix):
            return prefix + field[len(prefix):]
    raise ValueError(f"unknown node attribute {field!r} (use {_FIELDS_HELP})")


def parse_preference(spread: str) -> Preference:
    return Preference(spread=check_field(spread.strip()))


def parse_platform(text: str) -> Platform:
    """`linux/amd64[/v8]` (the service's `platform`) -> Platform(os, architecture)."""
    parts = text.strip().split("/")
    if not parts[0] or len(parts) > 3:
        raise ValueError(f"{text!r} is not a platform (like linux/amd64)")
    return Platform(os=parts[0], architecture=parts[1] if len(parts) > 1 else "")
