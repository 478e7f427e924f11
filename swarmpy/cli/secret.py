"""`swarmpy secret`: sensitive data given to services as files."""

import click

from swarmpy.cli.common import not_implemented


@click.group("secret")
def group():
    """Create, list, inspect and remove secrets (stored encrypted, given to tasks as files)."""


@group.command("ls")
def ls():
    """List secrets (never their content)."""
    not_implemented("secret ls")
