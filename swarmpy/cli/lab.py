"""`swarmpy lab`: several real hosts on one machine, for tests and demos."""

import functools
import json
import time

import click
from rich.table import Table

from swarmpy import lab
from swarmpy.cli.common import console, fail, host_option, state_dir_option
from swarmpy.client import Client, ClientError

DEFAULT_NAME = "lab"
name_option = click.option("--name", default=DEFAULT_NAME, show_default=True, help="Which lab.")


def lab_errors(command):
    """Turn a LabError into `error: ...` and exit status 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except lab.LabError as e:
            fail(str(e))
    return wrapper


@click.group("lab")
def group():
    """Make, list and remove a lab of real hosts on this machine (needs root)."""


@group.command("up")
@click.option("--nodes", "-n", default=3, show_default=True, help="How many hosts.")
@name_option
@click.option("--subnet", metavar="CIDR", help="The nodes' subnet (default: a free 10.x.0.0/24).")
@click.option("--image", "images", multiple=True, metavar="IMAGE",
              help="An image of this machine's engine to load into every node (repeatable).")
@click.option("--join", is_flag=True, help="Add every node to the running cluster (`swarmpy node add`).")
@host_option
@state_dir_option
@lab_errors
def up(nodes, name, subnet, images, join, host, state_dir):
    """Start a lab of N hosts on this machine.

    Each node is a network namespace on the lab's bridge with its own
    hostname, dockerd and sshd; swarmpy/busybox:latest and every --image are
    loaded into each node's engine.
    """
    started = time.monotonic()

    def progress(message):
        console.print(f"[dim]{time.monotonic() - started:5.1f}s[/dim] {message}", highlight=False, soft_wrap=True)

    made = lab.up(name=name, nodes=nodes, subnet=subnet, images=images, progress=progress)
    table = Table(title=f"lab {made.name} ({made.subnet}, host {made.host_address})")
    for column in ("NODE", "ADDRESS", "SSH PORT"):
        table.add_column(column)
    table.add_column("DOCKER SOCKET", overflow="fold")
    for node in made.nodes:
        table.add_row(node.name, node.address, str(node.ssh_port), node.docker_socket)
    console.print(table)
    first = made.nodes[0]
    console.print(
        f"ssh:         ssh -F {made.ssh_config} {first.name}\n"
        f"docker:      docker -H {first.docker_host} ps\n"
        f"over ssh:    PATH={made.bin_dir}:$PATH docker -H {first.ssh_url} ps\n"
        f"key:         {made.identity}\n"
        f"known_hosts: {made.known_hosts}",
        highlight=False, soft_wrap=True)
    if join:
        _join(made, Client.from_env(host, state_dir))


@group.command("join")
@name_option
@host_option
@state_dir_option
@lab_errors
def join(name, host, state_dir):
    """Add every node of a lab to the running cluster (`swarmpy node add` for each)."""
    _join(lab.Lab.load(name), Client.from_env(host, state_dir))


def _join(made: lab.Lab, client: Client) -> None:
    """Each lab node joins the cluster over SSH, with the lab's key and its known host keys. A node
    already in the cluster (same address and port: an earlier run that stopped half-way) is skipped,
    so that running it again finishes the job."""
    identity = open(made.identity).read()
    try:
        joined = {(n["address"], n.get("ssh_port")): n for n in client.nodes()}
    except ClientError as e:
        fail(f"cannot list the cluster's nodes: {e}")
    keys = {}
    for line in open(made.known_hosts).read().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            keys[parts[0]] = f"{parts[1]} {parts[2]}"
    for node in made.nodes:
        # nodes of other labs than the default one carry the lab's name, so two labs can join one cluster
        name = node.name if made.name == DEFAULT_NAME else f"{made.name}-{node.name}"
        host_key = keys.get(node.address) or keys.get(f"[{node.address}]:{node.ssh_port}")
        if (node.address, node.ssh_port) in joined:
            console.print(f"{name} is in the cluster already, as node {joined[node.address, node.ssh_port]['id']}")
            continue
        try:
            added = client.add_node(name, node.address, node.ssh_port, "root", identity, host_key=host_key)
        except ClientError as e:
            fail(f"{name} did not join: {e}")
        console.print(f"{name} joined the cluster as node {added['id']}")


@group.command("down")
@name_option
@lab_errors
def down(name):
    """Stop and remove everything the lab made. Safe to run again."""
    if not lab.down(name, progress=console.print):
        console.print(f"no lab named {name}: nothing to remove")


@group.command("status")
@name_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@lab_errors
def status(name, fmt):
    """List the nodes and whether each engine and sshd answers."""
    nodes = lab.status(name)
    if fmt == "json":
        click.echo(json.dumps(nodes, indent=2))
        return
    table = Table(title=f"lab {name}")
    for column in ("NODE", "ADDRESS", "SSH PORT", "ENGINE", "SSHD"):
        table.add_column(column)
    table.add_column("DOCKER SOCKET", overflow="fold")
    for node in nodes:
        table.add_row(node["name"], node["address"], str(node["ssh_port"]),
                      _answer(node["engine"]), _answer(node["sshd"]), node["docker_socket"])
    console.print(table)


@group.command("image")
@click.argument("preset", type=click.Choice([*lab.images.PRESETS, "all"]), default="busybox")
@click.option("--force", is_flag=True, help="Build again even if the engine has it.")
@lab_errors
def image(preset, force):
    """Build a lab image on this machine's engine if missing: busybox (the default), nginx, redis or all.

    Each is made from Debian's own binaries (busybox-static, nginx-light,
    redis-server) with `docker import`: no registry needed.
    """
    for name in lab.images.PRESETS if preset == "all" else [preset]:
        tag, started = lab.images.PRESETS[name], time.monotonic()
        if lab.images.build_preset(name, force=force):
            size = lab.images.image_size(tag) / 1e6
            console.print(f"built {tag} ({size:.1f} MB) in {time.monotonic() - started:.1f} s")
        else:
            console.print(f"{tag} is there already (--force builds it again)")


def _answer(ok: bool) -> str:
    return "[green]up[/green]" if ok else "[red]down[/red]"
