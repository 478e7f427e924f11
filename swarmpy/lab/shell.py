"""The lab's one exception type and its one way to run a command."""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor


class LabError(Exception):
    """Anything that stops a lab from coming up, answering or going away."""


def run(args: list[str], *, check: bool = True, input: bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command to completion; on failure raise LabError with its stderr."""
    try:
        done = subprocess.run(args, input=input, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{args[0]} is not installed (see scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(args)}` took more than {timeout:.0f} s") from None
    if check and done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise LabError(f"`{shlex.join(args)}` failed: {why}")
    return done


def on_each(function, items) -> list:
    """`function(item)` for every item at once (one thread each); the results in order."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=len(items) or 1) as pool:
        return list(pool.map(function, items))


def output(args: list[str], **kwargs) -> str:
    """Run a command and return its standard output as text."""
    return run(args, **kwargs).stdout.decode(errors="replace")
