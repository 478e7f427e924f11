"""`swarmpy network`: the cluster's networks (stacks make their own; these are shared)."""

from __future__ import annotations

import click

from swarmpy.cli.common import console, fail, format_option, print_json, show, short_id, with_client


def network_rows(networks: list[dict]) -> list[list[str]]:
    return [[short_id(n["id"]), n["name"], n["driver"], n["scope"], n["subnet"], n.get("stack") or "",
             ",".join(n.get("nodes") or []) or "-"] for n in networks]


NETWORK_COLUMNS = ["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "STACK", "NODES"]


@click.group("network")
def group():
    """Create, list, inspect and remove cluster networks."""


@group.command("create")
@click.argument("name")
@click.option("--subnet", default=None, metavar="CIDR", help="Its subnet (default: the next free one of the pool).")
@click.option("--attachable", is_flag=True, help="Containers started outside the cluster may join it.")
@click.option("--internal", is_flag=True, help="No route out of the cluster.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE")
@click.option("--opt", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Driver options (com.docker.network.driver.mtu).")
@click.option("--driver", "-d", default="overlay", show_default=True, help="Only overlay spans the cluster.")
@with_client
def create(client, name, subnet, attachable, internal, labels, options, driver):
    """Create a network that stacks join with `external: true`."""
    if driver != "overlay":
        fail(f"driver {driver!r} cannot span the cluster: only overlay networks can be made")
    pairs = {}
    for item in (*labels, *options):
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"invalid {item!r}: expected KEY=VALUE")
        pairs[item] = (key, value)
    mtu = None
    for item in options:
        key, value = pairs[item]
        if key != "com.docker.network.driver.mtu" or not value.isdigit():
            fail(f"unknown option {item!r} (com.docker.network.driver.mtu=N)")
        mtu = int(value)
    network = client.create_network(name, subnet=subnet, attachable=attachable, internal=internal,
                                    labels=dict(pairs[item] for item in labels), mtu=mtu)
    console.print(network["id"])


@group.command("ls")
@format_option
@with_client
def ls(client, fmt):
    """List networks, with their subnet and the nodes they span."""
    show(fmt, client.networks(), NETWORK_COLUMNS, network_rows)


@group.command("inspect")
@click.argument("networks", nargs=-1, required=True)
@with_client
def inspect(client, networks):
    """Show networks in detail: subnet, nodes, and each service's VIP and tasks there."""
    print_json([client.network(ref) for ref in networks])


@group.command("rm")
@click.argument("networks", nargs=-1, required=True)
@with_client
def rm(client, networks):
    """Remove networks no service uses."""
    for ref in networks:
        client.remove_network(ref)
        console.print(ref)
