"""Dict round trip of nested dataclasses (JSON for HTTP and Redis), and object ids."""

from __future__ import annotations

import dataclasses
import enum
import functools
import secrets
import types
import typing
from typing import Any


class Serializable:
    """Mixin: dict round trip for nested dataclasses (JSON for HTTP and Redis)."""

    # how `swarmpy.model.validation` reads them: JSON types exactly, no unknown keys
    __pydantic_config__ = {"strict": True, "extra": "forbid"}

    def to_dict(self) -> dict[str, Any]:
        return _encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _decode(cls, data)

    def copy(self, **changes):
        return dataclasses.replace(self, **changes)


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {name: _encode(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _decode(tp, value):
    return _decoder(tp)(value)


def _same(value):
    return value


@functools.cache
def _decoder(tp):
    """A function turning JSON data into `tp`, built once per type from its hints (records are
    decoded by the thousand: walking type hints for every value was most of a `service ls`)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _decoder(args[0]) if len(args) == 1 else _same
        return lambda v: None if v is None else inner(v)
    if origin is list:
        item = _decoder(typing.get_args(tp)[0])
        return _same if item is _same else (lambda v: None if v is None else [item(x) for x in v])
    if origin is dict:
        item = _decoder(typing.get_args(tp)[1])
        return _same if item is _same else (lambda v: None if v is None else {k: item(x) for k, x in v.items()})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: None if v is None else tp(v)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(tp)}

        def decode(v):
            if v is None:
                return None
            return tp(**{k: fields[k](x) for k, x in v.items() if k in fields})
        return decode
    return _same


_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A 25-character random id in base 36, as Swarm's object ids look (128 random bits)."""
    n = int.from_bytes(secrets.token_bytes(16), "big")
    digits = []
    for _ in range(25):
        n, d = divmod(n, 36)
        digits.append(_ID_ALPHABET[d])
    return "".join(digits)
