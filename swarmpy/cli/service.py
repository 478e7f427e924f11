"""`swarmpy service`: inspect and change services."""

import click

from swarmpy.cli.common import not_implemented


@click.group("service")
def group():
    """List, inspect, scale and remove services; read their logs."""


@group.command("ls")
def ls():
    """List services."""
    not_implemented("service ls")


@group.command("ps")
@click.argument("service")
def ps(service):
    """List the tasks of a service."""
    not_implemented("service ps")


@group.command("inspect")
@click.argument("service")
def inspect(service):
    """Show a service in detail."""
    not_implemented("service inspect")


@group.command("scale")
@click.argument("pairs", nargs=-1, required=True)
def scale(pairs):
    """Scale services: SERVICE=REPLICAS ..."""
    not_implemented("service scale")


@group.command("logs")
@click.argument("service")
def logs(service):
    """Show the logs of every task of a service."""
    not_implemented("service logs")


@group.command("rm")
@click.argument("services", nargs=-1, required=True)
def rm(services):
    """Remove services."""
    not_implemented("service rm")
