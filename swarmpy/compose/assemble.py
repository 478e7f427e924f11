"""Prepared files merged into one project, and `include`d projects added to it.

`-c` files merge in order. `include` is evaluated after the merge, as the
specification says: each included path is loaded as a project of its own
(its own directory for relative paths, its own `.env` for defaults that the
including project's environment overrides), then its services, networks,
volumes, secrets and configs are copied in. A name defined differently on
both sides is a problem, not a silent merge.
"""

from __future__ import annotations

import os
from typing import Any

from swarmpy.compose.errors import ComposeError
from swarmpy.compose.extends import resolve_extends
from swarmpy.compose.files import read_env_file
from swarmpy.compose.interpolation import chain, lookup_from
from swarmpy.compose.markers import strip_markers
from swarmpy.compose.merge import merge
from swarmpy.compose.project import Project, Source, display_name

SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


def load_files(project: Project, files: list[tuple[str, str]], base_dir: str, including: tuple = ()) -> dict:
    """(path, display) files merged into one mapping; `including` holds the files that included these."""
    merged: dict = {}
    for path, display in files:
        document = project.prepare(path, display, base_dir)
        if document is None:
            continue
        document = resolve_extends(project, document, path, display)
        project.sources.append(Source(display, document))
        merged = merge(merged, document)
    merged = strip_markers(merged)
    includes = merged.pop("include", None) or []
    paths = including + tuple(os.path.abspath(path) for path, _ in files)
    for index, entry in enumerate(includes):
        _include(project, merged, entry, files[0][1], ("include", index), paths)
    return merged


def _include(project: Project, merged: dict, entry: Any, display: str, where: tuple, including: tuple) -> None:
    spec = {"path": entry} if isinstance(entry, str) else entry
    paths = [spec["path"]] if isinstance(spec["path"], str) else list(spec["path"])
    if not paths:
        return
    if os.path.abspath(paths[0]) in including:
        names = " -> ".join(display_name(p) for p in including + (os.path.abspath(paths[0]),))
        project.problems.add(display, where, f"include cycle: {names}")
        return
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        project.problems.add(display, where, f"file not found: {missing[0]}")
        return
    project_dir = spec.get("project_directory") or os.path.dirname(paths[0])
    env_files = spec.get("env_file") or [os.path.join(project_dir, ".env")]
    env_files = [env_files] if isinstance(env_files, str) else env_files
    defaults: dict[str, str] = {}
    for env_file in env_files:
        if not spec.get("env_file") and not os.path.exists(env_file):
            continue  # the default .env is optional; named ones are not
        try:
            values = read_env_file(env_file, display_name(env_file), project.lookup)
        except ComposeError as error:
            project.problems.extend(error.problems)
            continue
        defaults.update({k: v for k, v in values.items() if v is not None})
    included = Project(lookup=chain(project.lookup, lookup_from(defaults)), home=project.home,
                       problems=project.problems, warnings=project.warnings, sources=project.sources)
    loaded = load_files(included, [(p, display_name(p)) for p in paths], project_dir, including)
    for section in SECTIONS:
        for name, value in (loaded.get(section) or {}).items():
            existing = merged.setdefault(section, {})
            if name in existing and existing[name] != value:
                project.problems.add(display, where, f"{section}.{name} is defined both here and in {display_name(paths[0])}")
            else:
                existing[name] = value
