"""Cluster-level commands: init, leave, and the long-running parts (manager, worker, lb)."""

import click

from swarmpy.cli.common import not_implemented


@click.command("init")
def init():
    """Start a one-node cluster on this machine."""
    not_implemented("init")


@click.command("leave")
def leave():
    """Stop what `swarmpy init` started on this machine."""
    not_implemented("leave")


commands = [init, leave]
