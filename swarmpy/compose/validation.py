"""Checking a Compose file against swarmpy's schema (`schema.json`), and the type casts before it.

Interpolation turns `replicas: ${N}` into the string "3"; like Docker, the
loader then casts strings to the type the schema expects at that place, so
"3" becomes 3, while "" or "three" stay strings and fail validation with a
clear type error. Each jsonschema error becomes one `Problem` whose path
names the bad key; for `anyOf` alternatives the branch that fits the value's
type explains what is wrong inside it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema
from jsonschema.exceptions import ValidationError

from swarmpy.compose.errors import Problem, format_path
from swarmpy.compose.markers import Override, Reset, strip_markers

_SCHEMA_FILE = Path(__file__).with_name("schema.json")
_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


@functools.cache
def schema() -> dict:
    return json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema())


def validate(document: dict, file: str) -> list[Problem]:
    """Problems of one file's mapping (markers seen through), sorted by key path."""
    found: dict[tuple, str] = {}
    for error in _validator().iter_errors(strip_markers(document)):
        for path, message in _describe(error):
            found.setdefault((tuple(path), message), message)
    ordered = sorted(found, key=lambda item: [str(part) for part in item[0]])
    return [Problem(file, format_path(path), message) for path, message in ordered]


def _describe(error: ValidationError) -> Iterator[tuple[list, str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        for key in error.instance:
            if key not in known and not str(key).startswith("x-"):
                yield path + [key], "unknown key"
        return
    if "propertyNames" in error.schema_path:
        yield path + [error.instance], "invalid name: use only letters, digits, '.', '_' and '-'"
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        yield from _describe_alternatives(error, path)
        return
    yield path, _short(error.message)


def _describe_alternatives(error: ValidationError, path: list) -> Iterator[tuple[list, str]]:
    """Explain an anyOf failure by the branch meant for this kind of value."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    wrong_type = lambda sub: sub.validator == "type" and not sub.relative_path  # noqa: E731
    fitting = [errors for errors in branches.values() if not any(wrong_type(sub) for sub in errors)]
    if fitting:  # the branch for this kind of value; with several, the one nearest to fit
        for sub in min(fitting, key=len):
            yield from _describe(sub)
        return
    expected: list[str] = []
    for sub in error.context:
        if wrong_type(sub):
            kinds = sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]
            expected += [kind for kind in kinds if kind not in expected]
    yield path, f"{_value(error.instance)} is not of type {', '.join(repr(k) for k in expected)}"


def _value(instance: Any) -> str:
    return _short(repr(instance))


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------
# casting interpolated strings to the types the schema expects
# --------------------------------------------------------------------------


def cast_types(document: Any) -> Any:
    """A copy of `document` with strings cast where the schema wants a number or boolean."""
    return _cast(document, schema())


def _resolve(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = schema()["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _branches(node: dict) -> list[dict]:
    """The alternatives a value may take at this place of the schema, $refs followed."""
    node = _resolve(node)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if not alternatives:
        return [node]
    return [leaf for alternative in alternatives for leaf in _branches(alternative)]


def _allowed(branches: list[dict]) -> set[str]:
    kinds: set[str] = set()
    for branch in branches:
        kind = branch.get("type")
        kinds.update(kind if isinstance(kind, list) else [kind] if kind else [])
    return kinds


def _branch_of_type(branches: list[dict], kind: str) -> dict | None:
    for branch in branches:
        allowed = branch.get("type")
        if allowed == kind or (isinstance(allowed, list) and kind in allowed):
            return branch
    return None


def _cast(value: Any, node: dict) -> Any:
    if isinstance(value, (Reset, Override)):
        return type(value)(_cast(value.value, node))
    branches = _branches(node)
    if isinstance(value, str):
        return _cast_string(value, _allowed(branches))
    if isinstance(value, dict):
        branch = _branch_of_type(branches, "object")
        if branch is None:
            return value
        return {key: _cast(item, _property_schema(branch, key)) for key, item in value.items()}
    if isinstance(value, list):
        branch = _branch_of_type(branches, "array")
        if branch is None or not isinstance(branch.get("items"), dict):
            return value
        return [_cast(item, branch["items"]) for item in value]
    return value


def _property_schema(branch: dict, key: str) -> dict:
    if key in branch.get("properties", {}):
        return branch["properties"][key]
    if str(key).startswith("x-"):
        return {}
    extra = branch.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _cast_string(text: str, allowed: set[str]) -> Any:
    if not allowed or "string" in allowed:
        return text
    stripped = text.strip()
    if "integer" in allowed:
        try:
            return int(stripped)
        except ValueError:
            pass
    if "number" in allowed:
        try:
            number = float(stripped)
            return int(number) if number.is_integer() and "." not in stripped and "e" not in stripped.lower() else number
        except ValueError:
            pass
    if "boolean" in allowed:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
    return text
