"""`${VAR}` interpolation, as the Compose Specification defines it.

Supported: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, nesting
inside the default/alt/message (`${A:-${B}}`), and `$$` for a literal `$`.
A `$` that starts no valid expression (`$1`, a lone `$`) is kept as it is,
as the specification says. Only values are interpolated, never keys.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

Lookup = Callable[[str], "str | None"]  # variable name -> value, None when unset

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A `${...}` expression that is malformed, or a required variable unset."""


def lookup_from(*mappings: Mapping[str, str]) -> Lookup:
    """A lookup that tries each mapping in turn: the first that has the name wins."""

    def lookup(name: str) -> str | None:
        for mapping in mappings:
            if name in mapping and mapping[name] is not None:
                return mapping[name]
        return None

    return lookup


def chain(*lookups: Lookup) -> Lookup:
    """A lookup that asks each lookup in turn: the first that knows the name wins."""

    def lookup(name: str) -> str | None:
        for each in lookups:
            value = each(name)
            if value is not None:
                return value
        return None

    return lookup


def substitute(text: str, lookup: Lookup, unset: Callable[[str], None] | None = None) -> str:
    """Interpolate one string. `unset(name)` is told of each unset `${VAR}` used without default."""
    return _Parser(text, lookup, unset).parse_until(None)


def interpolate(
    value: Any,
    lookup: Lookup,
    on_error: Callable[[tuple, str], None],
    unset: Callable[[tuple, str], None] | None = None,
    path: tuple = (),
    wrap: Callable[[Any, Callable[[Any], Any]], Any] | None = None,
) -> Any:
    """Interpolate every string value of a YAML tree (keys untouched); returns a new tree.

    Errors go to `on_error(path, message)` and leave the value as it was, so one
    pass reports every bad expression. `wrap(value, recurse)` lets the caller
    see through its own wrapper objects (the `!reset`/`!override` markers).
    """

    def walk(node: Any, where: tuple) -> Any:
        if wrap is not None:
            handled = wrap(node, lambda inner: walk(inner, where))
            if handled is not node:
                return handled
        if isinstance(node, str):
            try:
                return substitute(node, lookup, (lambda name: unset(where, name)) if unset else None)
            except InterpolationError as error:
                on_error(where, str(error))
                return node
        if isinstance(node, dict):
            return {key: walk(item, where + (key,)) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, where + (index,)) for index, item in enumerate(node)]
        return node

    return walk(value, path)


class _Parser:
    """Recursive descent over one string; nested expressions are parsed lazily,
    so `${A-${B?oops}}` does not fail when A is set."""

    def __init__(self, text: str, lookup: Lookup, unset: Callable[[str], None] | None):
        self.text, self.lookup, self.unset, self.pos = text, lookup, unset, 0

    def parse_until(self, stop: str | None) -> str:
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if stop is not None and char == stop:
                return "".join(out)
            if char != "$":
                out.append(char)
                self.pos += 1
                continue
            nxt = text[self.pos + 1] if self.pos + 1 < len(text) else ""
            if nxt == "$":
                out.append("$")
                self.pos += 2
            elif nxt == "{":
                out.append(self._braced())
            else:
                match = _NAME.match(text, self.pos + 1)
                if match:
                    out.append(self._value(match.group(0)) or "")
                    self.pos = match.end()
                else:  # `$1`, a lone `$`: not an expression, kept as written
                    out.append("$")
                    self.pos += 1
        if stop is not None:
            raise InterpolationError(f"invalid interpolation format in {self.text!r}: missing '}}'")
        return "".join(out)

    def _value(self, name: str) -> str | None:
        value = self.lookup(name)
        if value is None and self.unset is not None:
            self.unset(name)
        return value

    def _braced(self) -> str:
        start = self.pos
        self.pos += 2  # past "${"
        match = _NAME.match(self.text, self.pos)
        if not match:
            self._invalid(start)
        name = match.group(0)
        self.pos = match.end()
        if self.pos < len(self.text) and self.text[self.pos] == "}":
            self.pos += 1
            return self._value(name) or ""
        operator = next((op for op in _OPERATORS if self.text.startswith(op, self.pos)), None)
        if operator is None:
            self._invalid(start)
        self.pos += len(operator)
        value = self.lookup(name)
        is_set, non_empty = value is not None, bool(value)
        chosen = non_empty if operator.startswith(":") else is_set
        kind = operator[-1]
        if kind == "+":
            if chosen:
                return self._word()
            self._skip_word()
            return ""
        if chosen:  # "-" and "?" both keep the variable's own value
            self._skip_word()
            return value or ""
        if kind == "-":
            return self._word()
        message = self._word()  # "?": the variable is required
        detail = f": {message}" if message else ""
        raise InterpolationError(f"required variable {name} is missing a value{detail}")

    def _word(self) -> str:
        """The text after an operator up to the closing brace, itself interpolated."""
        word = self.parse_until("}")
        self.pos += 1  # the closing "}"
        return word

    def _skip_word(self) -> None:
        """Step over an unused default without evaluating it (it may hold `${X?}`)."""
        depth = 0
        while self.pos < len(self.text):
            if self.text.startswith("$$", self.pos):
                self.pos += 2
                continue
            if self.text.startswith("${", self.pos):
                depth += 1
                self.pos += 2
                continue
            if self.text[self.pos] == "}":
                self.pos += 1
                if depth == 0:
                    return
                depth -= 1
                continue
            self.pos += 1
        raise InterpolationError(f"invalid interpolation format in {self.text!r}: missing '}}'")

    def _invalid(self, start: int):
        end = self.text.find("}", start)
        expression = self.text[start : end + 1] if end >= 0 else self.text[start:]
        raise InterpolationError(
            f"invalid interpolation format {expression!r} (a literal $ is written $$)"
        )
