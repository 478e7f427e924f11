"""`swarmpy lab`: several real hosts on one machine, for tests and demos."""

import click

from swarmpy.cli.common import not_implemented


@click.group("lab")
def group():
    """Make, list and remove a lab of real hosts on this machine (needs root)."""


@group.command("up")
def up():
    """Start a lab."""
    not_implemented("lab up")
