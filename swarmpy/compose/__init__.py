"""The Compose loader: Compose files -> typed specs (`swarmpy.model.StackSpec`).

    stack, warnings = load_stack(["compose.yml"], environ={"TAG": "1.2"})

Raises `ComposeError` (with `.problems`, each a `Problem(file, path, message)`)
when the files cannot become a stack. Imports nothing of swarmpy but `model`.
"""

from swarmpy.compose.errors import ComposeError, Problem
from swarmpy.compose.loader import load_stack

__all__ = ["load_stack", "ComposeError", "Problem"]
