"""`swarmpy token`: API tokens limited to one stack (a CI pipeline's) or to reading /metrics (a Prometheus's)."""

from __future__ import annotations

import click

from swarmpy.cli.common import ago, console, format_option, show, with_client


@click.group("token")
def group():
    """Make, list and revoke tokens that may only deploy and read one stack, or only read /metrics."""


@group.command("create")
@click.option("--stack", help="The one stack the token may deploy, read, scale and remove.")
@click.option("--metrics", is_flag=True, help="A token that may only read /metrics (for Prometheus).")
@click.option("--allow-privileged", is_flag=True,
              help="Its services may use the dangerous options even where the cluster refuses them.")
@with_client
def create(client, stack, metrics, allow_privileged):
    """Make a token and print it (it is shown this once: the cluster keeps only a digest)."""
    if bool(stack) == metrics:
        raise click.UsageError("give --stack NAME or --metrics (one of them)")
    if metrics and allow_privileged:
        raise click.UsageError("--allow-privileged is for a stack token")
    made = client.create_token(stack, allow_privileged, metrics=metrics)
    console.print(made["token"], soft_wrap=True)
    what = "reading /metrics" if metrics else f"stack {stack}: use it as SWARMPY_TOKEN"
    click.echo(f"token {made['id']} for {what}", err=True)


@group.command("ls")
@format_option
@with_client
def ls(client, fmt):
    """List tokens (their ids and what they may do, never the tokens)."""
    show(fmt, client.tokens(), ["ID", "STACK", "PRIVILEGED", "CREATED"],
         lambda tokens: [[t["id"], t["stack"] or f"({t.get('scope')})", "yes" if t["allow_privileged"] else "no",
                          ago(t["created_at"])] for t in tokens])


@group.command("rm")
@click.argument("token_ids", nargs=-1, required=True)
@with_client
def rm(client, token_ids):
    """Revoke tokens: requests with them get 401 from then on."""
    for token_id in token_ids:
        console.print(client.remove_token(token_id)["removed"])
