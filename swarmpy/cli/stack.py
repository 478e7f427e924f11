"""`swarmpy stack`: deploy and manage Compose stacks."""

import click

from swarmpy.cli.common import not_implemented


@click.group("stack")
def group():
    """Deploy, list and remove stacks (Compose files with `deploy:` keys)."""


@group.command("config")
@click.option("-c", "--compose-file", "files", multiple=True, required=True, help="Compose file (repeat to merge).")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_cmd(files, fmt):
    """Print the normalized stack of the Compose files; needs no cluster."""
    not_implemented("stack config")


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
