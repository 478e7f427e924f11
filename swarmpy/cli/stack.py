"""`swarmpy stack`: deploy and manage Compose stacks."""

import json
import sys

import click
import yaml

from swarmpy.cli.common import EXIT_ERROR, not_implemented
from swarmpy.compose import ComposeError, load_stack


@click.group("stack")
def group():
    """Deploy, list and remove stacks (Compose files with `deploy:` keys)."""


@group.command("config")
@click.option("-c", "--compose-file", "files", multiple=True, required=True, help="Compose file (repeat to merge).")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_cmd(files, fmt):
    """Print the normalized stack of the Compose files; needs no cluster."""
    try:
        stack, warnings = load_stack(list(files))
    except ComposeError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_ERROR)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    normalized = _readable(stack.to_dict())
    if fmt == "json":
        click.echo(json.dumps(normalized, indent=2))
    else:
        click.echo(yaml.safe_dump(normalized, sort_keys=False, default_flow_style=False, allow_unicode=True), nl=False)


def _readable(value):
    """The stack without None values and empty containers (in the model's field order)."""
    if isinstance(value, dict):
        items = ((key, _readable(item)) for key, item in value.items())
        return {key: item for key, item in items if item is not None and item != {} and item != []}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


@group.command("deploy")
@click.option("-c", "--compose-file", "files", multiple=True, required=True, help="Compose file (repeat to merge).")
@click.argument("name")
def deploy(files, name):
    """Deploy a new stack or update an existing one."""
    not_implemented("stack deploy")


@group.command("ls")
def ls():
    """List stacks."""
    not_implemented("stack ls")


@group.command("ps")
@click.argument("name")
def ps(name):
    """List the tasks of a stack."""
    not_implemented("stack ps")


@group.command("services")
@click.argument("name")
def services(name):
    """List the services of a stack."""
    not_implemented("stack services")


@group.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm(names):
    """Remove stacks."""
    not_implemented("stack rm")
