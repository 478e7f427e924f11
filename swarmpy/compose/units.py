"""Durations and byte sizes as Compose writes them.

Durations use Go's syntax (`1m30s`, `500ms`, `1h`), the one Docker parses;
byte sizes use Docker's binary units (`512m` is 512 MiB), so a limit means the
same here as under `docker stack deploy`.
"""

from __future__ import annotations

import re

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_BYTES = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$", re.IGNORECASE)
_BYTE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(text: str) -> float:
    """Go duration -> seconds. Raises ValueError with a message fit for a user."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration (like 10s, 1m30s, 500ms)")
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"{text!r} is not a duration (like 10s, 1m30s, 500ms)")
    return sign * total


def parse_bytes(value: str | int | float) -> int:
    """`512m`, `1.5GB`, `100k`, 1024 -> bytes (binary multiples, as Docker reads them)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a byte size (like 512m, 1g, 100k)")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is not a byte size: it is negative")
        return int(value)
    match = _BYTES.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a byte size (like 512m, 1g, 100k)")
    return int(float(match.group(1)) * _BYTE_FACTORS[match.group(2).lower()])


def parse_cpus(value: str | int | float) -> float:
    """`'0.5'` or 0.5 -> 0.5 cores."""
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of CPUs (like 0.5 or '2')") from None
    if cpus < 0 or cpus != cpus:
        raise ValueError(f"{value!r} is not a number of CPUs: it must be 0 or more")
    return cpus
