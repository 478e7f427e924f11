"""Helpers shared by the CLI modules: errors, exit codes, output."""

import sys

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

EXIT_ERROR = 1
EXIT_NOT_IMPLEMENTED = 2


def not_implemented(what: str):
    click.echo(f"swarmpy {what}: not implemented yet", err=True)
    sys.exit(EXIT_NOT_IMPLEMENTED)


def fail(message: str, code: int = EXIT_ERROR):
    """Print `error: <message>` on stderr and exit; never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
