"""The merge tags `!reset` and `!override`, and seeing through them.

A file may tag a value `!reset` (drop what an earlier file set) or
`!override` (replace it instead of merging). The YAML reader wraps such
values in these markers; every step before the merge looks through them, the
merge acts on them (merge.py), and nothing after the merge sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Reset:
    """`!reset`: drop the value an earlier file set."""

    value: Any = None


@dataclass
class Override:
    """`!override`: replace an earlier file's value instead of merging with it."""

    value: Any = None


def mapping_in(value: Any) -> dict:
    """The mapping behind a value, looking through `!override`; {} for anything else."""
    if isinstance(value, Override):
        value = value.value
    return value if isinstance(value, dict) else {}


def change_value(container: dict, key: str, change: Callable[[Any], Any]) -> None:
    """`container[key] = change(container[key])`, keeping an `!override` around it.

    Absent keys, None and `!reset` values are left alone.
    """
    value = container.get(key)
    if value is None or isinstance(value, Reset):
        return
    container[key] = Override(change(value.value)) if isinstance(value, Override) else change(value)


def strip_markers(value: Any) -> Any:
    """A value with every `!reset` removed and every `!override` unwrapped."""
    if isinstance(value, Override):
        return strip_markers(value.value)
    if isinstance(value, dict):
        return {k: strip_markers(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_markers(v) for v in value if not isinstance(v, Reset)]
    return value
