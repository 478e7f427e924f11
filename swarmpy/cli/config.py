"""`swarmpy config`: non-sensitive files given to services."""

import click

from swarmpy.cli.common import not_implemented


@click.group("config")
def group():
    """Create, list, inspect and remove configs (files given to tasks)."""


@group.command("ls")
def ls():
    """List configs."""
    not_implemented("config ls")
