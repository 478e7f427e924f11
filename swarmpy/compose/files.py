"""Reading Compose files (YAML) and env files (`.env`, `env_file:`).

YAML is read the way Docker's Go loader reads it (YAML 1.2 scalars), not with
PyYAML's YAML 1.1 defaults: `yes`/`on` stay strings, `22:22` stays a string
instead of a base-60 number, `0440` is octal, dates stay strings. Duplicate
keys are errors, as in Docker. The Compose merge tags `!reset` and `!override`
become the markers of `markers.py`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from swarmpy.compose.errors import ComposeError, Problem
from swarmpy.compose.interpolation import InterpolationError, Lookup, substitute
from swarmpy.compose.markers import Override, Reset


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and strict keys."""

    yaml_implicit_resolvers: dict = {}

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        seen: dict[str, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = _key(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined at line {seen[key].line + 1}", key_node.start_mark
                )
            seen[key] = key_node.start_mark
        self.flatten_mapping(node)  # `<<` merge keys: their entries first, the node's own ones win
        return {_key(key_node): self.construct_object(value_node, deep=deep) for key_node, value_node in node.value}


def _key(node) -> str:
    """Keys are names, kept as written: `TRUE:` or `1:` give the keys "TRUE" and "1"."""
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "mapping keys must be plain names", node.start_mark)
    return node.value


def _resolver(tag: str, pattern: str, first: str) -> None:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern, re.X), list(first))


_resolver("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_resolver("null", r"^(?:~|null|Null|NULL)$", "~nN")
_Loader.yaml_implicit_resolvers.setdefault("", []).append(
    ("tag:yaml.org,2002:null", re.compile(r"^$"))
)
_resolver("int", r"^[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$", "-+0123456789")
_resolver(
    "float",
    r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    "-+0123456789.",
)
_resolver("merge", r"^(?:<<)$", "<")


def _construct_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if re.fullmatch(r"0[0-7]+", digits):  # Go reads a leading 0 as octal (mode: 0440)
        return sign * int(digits, 8)
    try:
        return sign * int(digits, 0)
    except ValueError:  # e.g. 089: not octal; Go would fail too, keep the text
        return text


def _marker(cls):
    def construct(loader, node):
        if isinstance(node, yaml.MappingNode):
            return cls(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return cls(loader.construct_sequence(node, deep=True))
        return cls(loader.construct_scalar(node))

    return construct


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("!reset", _marker(Reset))
_Loader.add_constructor("!override", _marker(Override))


# YAML files may be UTF-8, UTF-16 or UTF-32, told apart by a byte-order mark (as Docker's loader reads them)
_BOMS = ((b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xfe\xff", "utf-16"), (b"\xff\xfe", "utf-16"))


def _read_text(path: str, display: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
        return data.decode(encoding)
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a file"
    except UnicodeDecodeError:
        message = "is not UTF-8 text (nor UTF-16 or UTF-32 with a byte-order mark)"
    except OSError as error:
        message = f"cannot read file: {error.strerror or error}"
    raise ComposeError([Problem(display, "(root)", message)])


def read_yaml(path: str, display: str) -> dict:
    """The top-level mapping of a Compose file; `display` is the name for messages."""
    text = _read_text(path, display)
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ComposeError([Problem(display, "(root)", f"invalid YAML: {error.problem}{where}")]) from None
    except (yaml.YAMLError, RecursionError) as error:
        raise ComposeError([Problem(display, "(root)", f"invalid YAML: {error}")]) from None
    if not documents:
        return {}
    _check_shape(documents, display)
    for document in documents:
        if not isinstance(document, dict):
            kind = type(document).__name__
            raise ComposeError([Problem(display, "(root)", f"must be a mapping of top-level keys, not a {kind}")])
    if len(documents) == 1:
        return documents[0]
    from swarmpy.compose.merge import merge  # several documents in one file merge in order

    merged: dict = {}
    for document in documents:
        merged = merge(merged, document)
    return merged


_MAX_DEPTH = 100
_MAX_NODES = 1_000_000


def _check_shape(value: Any, display: str) -> None:
    """Refuse what aliases can make of YAML: a value inside itself, or a tree too big to walk."""
    count = 0

    def walk(node: Any, depth: int, path: set[int]) -> None:
        nonlocal count
        count += 1
        if count > _MAX_NODES or depth > _MAX_DEPTH:
            raise ComposeError([Problem(display, "(root)", "too deeply nested or too large once aliases are expanded")])
        if isinstance(node, (Reset, Override)):
            node = node.value
        if not isinstance(node, (dict, list)):
            return
        if id(node) in path:
            raise ComposeError([Problem(display, "(root)", "an alias refers to a value that contains it")])
        path.add(id(node))
        for child in node.values() if isinstance(node, dict) else node:
            walk(child, depth + 1, path)
        path.discard(id(node))

    walk(value, 0, set())


# --------------------------------------------------------------------------
# env files
# --------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([^\s=:#][^\s=:]*)\s*(?:([=:])\s*(.*))?$", re.S)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def read_env_file(path: str, display: str, lookup: Lookup, raw: bool = False) -> dict[str, str | None]:
    """Parse an env file as the Compose Specification describes its format.

    A line `VAR` without `=` yields None (the caller decides where such a value
    comes from). Values may use `${VAR}` of the environment (`lookup`) and of
    lines above them. `raw` (env_file `format: raw`) takes values as written.
    """
    lines = _read_text(path, display).splitlines()
    values: dict[str, str | None] = {}

    def local_lookup(name: str) -> str | None:
        return values[name] if values.get(name) is not None else lookup(name)

    index = 0
    while index < len(lines):
        line, number = lines[index], index + 1
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            raise ComposeError([Problem(display, f"line {number}", f"not a VAR=VALUE line: {line.strip()!r}")])
        key, delimiter, text = match.group(1), match.group(2), match.group(3)
        if delimiter is None:
            values[key] = None
            continue
        if raw:
            values[key] = text
            continue
        text = text.rstrip()
        quote = text[:1]
        if quote in ("'", '"'):
            # a quoted value may go on over several lines until its closing quote
            while _closing_quote(text, quote) < 0 and index < len(lines):
                text += "\n" + lines[index]
                index += 1
            end = _closing_quote(text, quote)
            if end < 0:
                raise ComposeError([Problem(display, f"line {number}", f"{key}: missing closing {quote}")])
            body = text[1:end]
            if quote == "'":
                values[key] = body.replace("\\'", "'")
                continue
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body, flags=re.S)
        else:
            body = re.split(r"\s+#", text, maxsplit=1)[0].strip()
        try:
            values[key] = substitute(body, local_lookup)
        except InterpolationError as error:
            raise ComposeError([Problem(display, f"line {number}", f"{key}: {error}")]) from None
    return values


def _closing_quote(text: str, quote: str) -> int:
    position = 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == quote:
            return position
        position += 1
    return -1
