"""The state of one load, and each file's way from disk to canonical form.

Each file is read, interpolated, cast, validated, normalized and has its
relative paths made absolute on its own (the specification interpolates per
file, before merging). Problems are collected across all files; a file that
fails validation is left out of the later steps, since its shapes cannot be
trusted. `assemble.py` then merges the prepared files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from swarmpy.compose.errors import ComposeError, Problems, format_path
from swarmpy.compose.files import read_yaml
from swarmpy.compose.interpolation import Lookup, interpolate
from swarmpy.compose.markers import Override, Reset
from swarmpy.compose.normalize import normalize
from swarmpy.compose.paths import PathResolver, resolve_paths
from swarmpy.compose.validation import cast_types, validate


def display_name(path: str) -> str:
    """A path as messages show it: relative to the working directory when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


@dataclass
class Source:
    """One file as it went into the merge; used to tell which file a problem comes from."""

    file: str
    document: dict


@dataclass
class Project:
    """Shared state of one load: where values come from and what went wrong."""

    lookup: Lookup
    home: str | None
    problems: Problems = field(default_factory=Problems)
    warnings: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    _prepared: dict[str, dict | None] = field(default_factory=dict)
    _unset_seen: set = field(default_factory=set)
    _unset_at: dict = field(default_factory=dict)  # value path -> the unset variables it used

    def warn(self, file: str, path: tuple | str, message: str) -> None:
        where = path if isinstance(path, str) else format_path(path)
        text = f"{file}: {where}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    def prepare(self, path: str, display: str, base_dir: str) -> dict | None:
        """One file read and brought to canonical form; None when it has problems."""
        key = os.path.abspath(path)
        if key not in self._prepared:
            self._prepared[key] = self._prepare(path, display, base_dir)
        return self._prepared[key]

    def _prepare(self, path: str, display: str, base_dir: str) -> dict | None:
        try:
            raw = read_yaml(path, display)
        except ComposeError as error:
            self.problems.extend(error.problems)
            return None
        before = len(self.problems.items)

        def on_error(where: tuple, message: str) -> None:
            self.problems.add(display, where, message)

        def on_unset(where: tuple, name: str) -> None:
            self._unset_at.setdefault(tuple(where), []).append(name)
            if (display, name) not in self._unset_seen:
                self._unset_seen.add((display, name))
                self.warn(display, where, f"variable {name} is not set, substituting an empty string")

        document = interpolate(raw, self.lookup, on_error, on_unset, wrap=_through_markers)
        document = cast_types(document)
        self.problems.extend(validate(document, display))
        if len(self.problems.items) > before:
            return None
        normalize(document)
        return resolve_paths(document, PathResolver(base_dir, self.home))

    def problem(self, path: tuple, message: str) -> None:
        """A problem found in the merged model, charged to the file the value came from (and, when
        the value used unset variables, naming them: they are the likely cause)."""
        unset = self._unset_at.get(tuple(path))
        if unset:
            names = ", ".join(dict.fromkeys(unset))
            message += f" (the variable{'s' if len(unset) > 1 else ''} {names} {'are' if len(unset) > 1 else 'is'} " \
                       "not set: an empty string took its place)"
        self.problems.add(self.origin(path), path, message)

    def warning(self, path: tuple, message: str) -> None:
        self.warn(self.origin(path), path, message)

    def parsed(self, path: tuple, parse, value: Any, default: Any = None) -> Any:
        """`parse(value)`, or `default` with a problem when it raises ValueError."""
        try:
            return parse(value)
        except ValueError as error:
            self.problem(path, str(error))
            return default

    def origin(self, path: tuple) -> str:
        """The file a merged value came from: the last one holding the longest part of its path."""
        best_file, best_depth = self.sources[0].file if self.sources else "(unknown)", -1
        for source in self.sources:
            depth = _depth(source.document, path)
            if depth >= best_depth:
                best_file, best_depth = source.file, depth
        return best_file


def _through_markers(value: Any, recurse) -> Any:
    if isinstance(value, (Reset, Override)):
        return type(value)(recurse(value.value))
    return value


def _depth(document: Any, path: tuple) -> int:
    depth = 0
    for part in path:
        if isinstance(document, (Reset, Override)):
            document = document.value
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and isinstance(part, int) and 0 <= part < len(document):
            document = document[part]
        else:
            break
        depth += 1
    return depth
