"""`swarmpy node`: the hosts of the cluster."""

from __future__ import annotations

from pathlib import Path

import click

from swarmpy.cli.common import (TASK_COLUMNS, console, err_console, fail, format_option, print_json,
                                show, task_rows, with_client)


def _labels(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            fail(f"{option} {pair!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def _ssh_target(text: str) -> tuple[str, str, int]:
    user, _, rest = text.rpartition("@")
    host, _, port = rest.partition(":")
    if not host:
        fail(f"--ssh {text!r}: expected user@host[:port]")
    try:
        return user or "root", host, int(port or 22)
    except ValueError:
        fail(f"--ssh {text!r}: the port must be a number")


def _known_host_key(path: str | None, host: str, port: int) -> str | None:
    """The host's key from a known_hosts file (plain entries), if one is given."""
    if not path:
        return None
    names = {host, f"[{host}]:{port}"}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and names & set(parts[0].split(",")):
            return f"{parts[1]} {parts[2]}"
    fail(f"no key for {host} in {path}")


@click.group("node")
def group():
    """Add, list, update, promote and remove nodes (hosts reached over SSH)."""


@group.command("add")
@click.argument("name")
@click.option("--ssh", "ssh", required=True, metavar="USER@HOST[:PORT]", help="Where to reach the host.")
@click.option("--identity", "-i", type=click.Path(exists=True, dir_okay=False),
              help="SSH private key (default: the cluster's own key).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Node label (repeat).")
@click.option("--accept-host-key", is_flag=True, help="Trust the host's key on this first contact.")
@click.option("--known-hosts", type=click.Path(exists=True, dir_okay=False),
              help="known_hosts file holding the host's key.")
@with_client
def add(client, name, ssh, identity, labels, accept_host_key, known_hosts):
    """Add a host (Docker and sshd on it) to the cluster as node NAME."""
    user, host, port = _ssh_target(ssh)
    key = Path(identity).read_text() if identity else None
    node = client.add_node(name, host, port, user, key, _labels(labels, "--label"), accept_host_key,
                           _known_host_key(known_hosts, host, port))
    console.print(f"Node {node['hostname']} ({node['id']}) added: {node['os']}/{node['architecture']}, "
                  f"{node['cpus']:g} CPUs, Docker {node['engine_version']}")


@group.command("ls")
@format_option
@with_client
def ls(client, fmt):
    """List nodes."""
    show(fmt, client.nodes(), ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION",
                               "SWARMPY PROCESSES"],
         lambda nodes: [[n["id"], n["hostname"], n["status"].capitalize(), n["availability"].capitalize(),
                         n["manager_status"], n["engine_version"], parts_text(n.get("parts", {}))] for n in nodes])


def parts_text(parts: dict) -> str:
    """`manager lb worker`, a part its supervisor is restarting marked so, with its last exit."""
    return ", ".join(name if p["state"] == "running" else f"{name} ({p['state']}: {p.get('last_exit') or '?'})"
                     for name, p in parts.items())


@group.command("inspect")
@click.argument("nodes", nargs=-1, required=True)
@click.option("--pretty", is_flag=True, help="Human-readable output.")
@with_client
def inspect(client, nodes, pretty):
    """Show nodes in detail."""
    found = [client.node(ref) for ref in nodes]
    if not pretty:
        return print_json(found)
    for n in found:
        console.print(f"ID:\t\t\t{n['id']}\nHostname:\t\t{n['hostname']}\nAddress:\t\t{n['address']}\n"
                      f"Role:\t\t\t{n['role']}\nStatus:\t\t\t{n['status']} {n['message']}\n"
                      f"Availability:\t\t{n['availability']}\nManager Status:\t\t{n['manager_status']}\n"
                      f"Labels:\t\t\t{', '.join(f'{k}={v}' for k, v in n['labels'].items())}\n"
                      f"Platform:\t\t{n['os']}/{n['architecture']}\nCPUs:\t\t\t{n['cpus']:g}\n"
                      f"Memory:\t\t\t{n['memory'] / 2**30:.3f}GiB\nEngine Version:\t\t{n['engine_version']}\n")


@group.command("ps")
@click.argument("node")
@format_option
@with_client
def ps(client, node, fmt):
    """List the tasks on a node."""
    show(fmt, client.tasks(node=node), TASK_COLUMNS, task_rows)


@group.command("update")
@click.argument("node")
@click.option("--availability", type=click.Choice(["active", "pause", "drain"]))
@click.option("--label-add", multiple=True, metavar="KEY=VALUE")
@click.option("--label-rm", multiple=True, metavar="KEY")
@click.option("--lb", type=click.BOOL, default=None, help="Run a load balancer on this node (true/false).")
@with_client
def update(client, node, availability, label_add, label_rm, lb):
    """Change a node's availability, labels or load balancer."""
    n = client.update_node(node, availability=availability, label_add=_labels(label_add, "--label-add"),
                           label_rm=list(label_rm), lb=lb)
    console.print(n["id"])


@group.command("rm")
@click.argument("nodes", nargs=-1, required=True)
@click.option("--force", "-f", is_flag=True, help="Remove even a node that is not down.")
@with_client
def rm(client, nodes, force):
    """Remove nodes from the cluster."""
    for ref in nodes:
        result = client.remove_node(ref, force=force)
        console.print(ref)
        if not result.get("cleaned"):
            err_console.print(f"warning: {result.get('message')}")


@group.command("promote")
@click.argument("nodes", nargs=-1, required=True)
@with_client
def promote(client, nodes):
    """Make nodes managers (starts `swarmpy manager` there over SSH)."""
    for ref in nodes:
        n = client.promote(ref)
        console.print(f"Node {n['hostname']} promoted to a manager in the swarm.")


@group.command("demote")
@click.argument("nodes", nargs=-1, required=True)
@with_client
def demote(client, nodes):
    """Make managers plain nodes again (stops their manager)."""
    for ref in nodes:
        n = client.demote(ref)
        console.print(f"Manager {n['hostname']} demoted in the swarm.")
