"""`swarmpy token`: API tokens limited to one stack, for a CI pipeline."""

from __future__ import annotations

import click

from swarmpy.cli.common import ago, console, format_option, show, with_client


@click.group("token")
def group():
    """Make, list and revoke tokens that may only deploy and read one stack."""


@group.command("create")
@click.option("--stack", required=True, help="The one stack the token may deploy, read, scale and remove.")
@click.option("--allow-privileged", is_flag=True,
              help="Its services may use the dangerous options even where the cluster refuses them.")
@with_client
def create(client, stack, allow_privileged):
    """Make a token and print it (it is shown this once: the cluster keeps only a digest)."""
    made = client.create_token(stack, allow_privileged)
    console.print(made["token"], soft_wrap=True)
    click.echo(f"token {made['id']} for stack {stack}: use it as SWARMPY_TOKEN", err=True)


@group.command("ls")
@format_option
@with_client
def ls(client, fmt):
    """List tokens (their ids and stacks, never the tokens)."""
    show(fmt, client.tokens(), ["ID", "STACK", "PRIVILEGED", "CREATED"],
         lambda tokens: [[t["id"], t["stack"], "yes" if t["allow_privileged"] else "no", ago(t["created_at"])]
                         for t in tokens])


@group.command("rm")
@click.argument("token_ids", nargs=-1, required=True)
@with_client
def rm(client, token_ids):
    """Revoke tokens: requests with them get 401 from then on."""
    for token_id in token_ids:
        console.print(client.remove_token(token_id)["removed"])
