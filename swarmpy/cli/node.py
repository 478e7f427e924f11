"""`swarmpy node`: the hosts of the cluster."""

import click

from swarmpy.cli.common import not_implemented


@click.group("node")
def group():
    """Add, list, update, promote and remove nodes (hosts reached over SSH)."""


@group.command("add")
@click.argument("name")
def add(name):
    """Add a host to the cluster."""
    not_implemented("node add")


@group.command("ls")
def ls():
    """List nodes."""
    not_implemented("node ls")


@group.command("promote")
@click.argument("nodes", nargs=-1, required=True)
def promote(nodes):
    """Make nodes managers."""
    not_implemented("node promote")


@group.command("demote")
@click.argument("nodes", nargs=-1, required=True)
def demote(nodes):
    """Make managers plain nodes again."""
    not_implemented("node demote")
