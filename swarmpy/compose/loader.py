"""`load_stack`: Compose files -> StackSpec, or a ComposeError naming every problem."""

from __future__ import annotations

import os
from typing import Mapping

from swarmpy.compose.assemble import load_files
from swarmpy.compose.convert import convert_stack
from swarmpy.compose.errors import ComposeError, Problem
from swarmpy.compose.files import read_env_file
from swarmpy.compose.interpolation import lookup_from
from swarmpy.compose.project import Project
from swarmpy.model import StackSpec


def load_stack(
    files: list[str], environ: Mapping[str, str] | None = None, name: str | None = None
) -> tuple[StackSpec, list[str]]:
    """Load, interpolate, merge, validate and convert Compose files into a StackSpec.

    `environ` (default: os.environ) supplies `${VAR}` values; a `.env` file beside
    the first file supplies the ones it lacks. Relative paths are resolved
    against the first file's directory. Returns the stack and the warnings
    ("<file>: <key path>: <message>"); raises ComposeError with every problem.
    """
    if not files:
        raise ComposeError([Problem("(none)", "(root)", "no Compose file given")])
    environ = dict(os.environ if environ is None else environ)
    base_dir = os.path.dirname(os.path.abspath(files[0]))
    dotenv: dict[str, str] = {}
    dotenv_path = os.path.join(base_dir, ".env")
    if os.path.isfile(dotenv_path):
        shown = os.path.join(os.path.dirname(files[0]), ".env")
        values = read_env_file(dotenv_path, shown, lookup_from(environ))
        dotenv = {key: value for key, value in values.items() if value is not None}
    project = Project(lookup=lookup_from(environ, dotenv), home=environ.get("HOME"))
    merged = load_files(project, [(path, path) for path in files], base_dir)
    project.problems.check()  # conversion needs files that loaded and validated
    stack = convert_stack(project, merged, name)
    project.problems.check()
    return stack, project.warnings
