"""YAML scalars turned into text the way Docker's Go loader does it.

Environment values, labels and options are strings in a container; a file
may write them as numbers or booleans. Docker prints `true` as "true", 1.0 as
"1" and 1000000.0 as "1e+06" (Go's %v); swarmpy gives the same text, so a
stack means the same under both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def stringify_values(mapping: dict) -> dict[str, str]:
    """Label-like mappings: every value as text, a key without a value as ""."""
    return {key: "" if value is None else scalar_text(value) for key, value in mapping.items()}


def go_float(number: float) -> str:
    """Go's %v of a float64: shortest digits, exponent form from 1e+06 up and below 1e-04."""
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "+Inf" if number > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(number)).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    text = "".join(map(str, digits))
    point = len(digits) + exponent  # where the decimal point falls in `text`
    prefix = "-" if sign else ""
    if text == "0":
        return prefix + "0"
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"
