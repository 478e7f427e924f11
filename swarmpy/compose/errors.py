"""The loader's one exception, and the problems it carries.

Every problem names the file, the key path in it and what is wrong, so a user
can go straight to the line (Kamal's habit). The loader collects as many
problems as it can before it raises, instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

ROOT = "(root)"

Path = tuple  # key path as a tuple of str keys and int list indexes


def format_path(path: Sequence) -> str:
    """("services", "web", "ports", 0) -> "services.web.ports.0"; () -> "(root)"."""
    return ".".join(str(part) for part in path) if path else ROOT


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ComposeError(Exception):
    """Raised by `load_stack` when the Compose files cannot become a stack."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(dict.fromkeys(problems))  # drop repeats, keep order
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class Problems:
    """Collects problems while a step goes on; `check()` raises them together."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, path: Sequence | str, message: str) -> None:
        text = path if isinstance(path, str) else format_path(path)
        self.items.append(Problem(file, text, message))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def __bool__(self) -> bool:
        return bool(self.items)

    def check(self) -> None:
        if self.items:
            raise ComposeError(self.items)
