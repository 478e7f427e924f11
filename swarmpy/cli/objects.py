"""`swarmpy secret` and `swarmpy config`: one set of commands for both kinds."""

from __future__ import annotations

import base64
import sys

import click

from swarmpy.cli.common import ago, console, fail, format_option, print_json, show, with_client


def object_group(kind: str, help_text: str) -> click.Group:
    group = click.Group(kind, help=help_text)

    @group.command("create")
    @click.argument("name")
    @click.argument("file", type=click.Path(allow_dash=True))
    @click.option("--label", "labels", multiple=True, metavar="KEY=VALUE")
    @with_client
    def create(client, name, file, labels):
        """Create from FILE ("-" reads standard input)."""
        try:
            data = sys.stdin.buffer.read() if file == "-" else open(file, "rb").read()
        except OSError as e:
            fail(f"{file}: {e.strerror}")
        meta = client.create_object(kind, name, base64.b64encode(data).decode(),
                                    dict(label.partition("=")[::2] for label in labels))
        console.print(meta["id"])

    create.help = f"Create a {kind} from FILE (\"-\" reads standard input)."

    @group.command("ls")
    @format_option
    @with_client
    def ls(client, fmt):
        show(fmt, client.objects(kind), ["ID", "NAME", "CREATED"],
             lambda items: [[m["id"], m["name"], ago(m["created_at"])] for m in items])

    ls.help = f"List {kind}s (names and dates, never their content)."

    @group.command("inspect")
    @click.argument("names", nargs=-1, required=True)
    @with_client
    def inspect(client, names):
        print_json([client.object(kind, n) for n in names])

    inspect.help = f"Show {kind}s' metadata (never their content)."

    @group.command("rm")
    @click.argument("names", nargs=-1, required=True)
    @with_client
    def rm(client, names):
        for n in names:
            client.remove_object(kind, n)
            console.print(n)

    rm.help = f"Remove {kind}s that no service uses."
    return group
