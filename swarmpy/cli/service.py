"""`swarmpy service`: create, inspect and change services."""

from __future__ import annotations

import sys

import click

from swarmpy.cli import service_flags
from swarmpy.cli.common import (EXIT_ERROR, TASK_COLUMNS, console, fail, format_option, print_json,
                                show, task_rows, with_client)
from swarmpy.cli.progress import wait_converged
from swarmpy.model import ServiceSpec, validation


def service_rows(services: list[dict]) -> list[list[str]]:
    return [[s["id"][:12], s["name"], s["mode"], s["replicas"], s["image"], s["ports"]] for s in services]


SERVICE_COLUMNS = ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]


@click.group("service")
def group():
    """Create, update, roll back, list, inspect, scale and remove services; read their logs; exec in their tasks."""


def _check(spec: ServiceSpec, full_name: str, key: str) -> None:
    """The manager's own rules, before anything is sent: one `error:` line each, exit 1."""
    problems = validation.service_problems(spec, full_name, key)
    for path, message in problems:
        click.echo(f"error: {path}: {message}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)


def _settle(client, name: str, detach: bool, timeout: float) -> None:
    if not detach:
        wait_converged(client, [name], timeout)


@group.command("create", context_settings={"allow_interspersed_args": False})  # flags after IMAGE are its command's
@service_flags.create_options
@click.argument("image", type=service_flags.IMAGE)
@click.argument("command", nargs=-1)
@with_client
def create(client, image, command, detach, timeout, **opts):
    """Create a service of no stack: IMAGE [COMMAND [ARG...]], as `docker service create`."""
    spec = service_flags.create_spec(image, command, opts)
    _check(spec, spec.name, spec.name)
    service = client.create_service(spec.to_dict())
    console.print(service["id"])
    _settle(client, service["name"], detach, timeout)


@group.command("update")
@service_flags.update_options
@click.argument("service")
@with_client
def update(client, service, detach, timeout, force, **opts):
    """Update a service: only what the flags name changes (a change to its tasks rolls out under its
    update config; --force replaces the tasks even when nothing changed)."""
    current = client.service(service)
    spec = service_flags.update_spec(ServiceSpec.from_dict(current["spec"]), opts)
    _check(spec, current["name"], current["spec"]["name"])
    updated = client.update_service(current["id"], spec.to_dict(), version=current["version"], force=force)
    console.print(updated["name"])
    if updated["changed"]:
        _settle(client, updated["name"], detach, timeout)


@group.command("rollback")
@click.argument("service")
@click.option("--detach", "-d", is_flag=True, help="Exit immediately instead of waiting for the service to converge.")
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for the service to converge.")
@with_client
def rollback(client, service, detach, timeout):
    """Revert a service to its previous spec, rolled out under its rollback config."""
    rolled = client.rollback_service(service)
    console.print(f"{rolled['name']}\nrollback: manually requested rollback")
    _settle(client, rolled["name"], detach, timeout)


@group.command("ls")
@click.option("--stack", default=None, help="Only the services of this stack.")
@format_option
@with_client
def ls(client, stack, fmt):
    """List services."""
    show(fmt, client.services(stack=stack), SERVICE_COLUMNS, service_rows)


@group.command("ps")
@click.argument("service")
@format_option
@with_client
def ps(client, service, fmt):
    """List the tasks of a service (older tasks of a slot indented below it)."""
    show(fmt, client.service_tasks(service), TASK_COLUMNS, task_rows)


@group.command("inspect")
@click.argument("services", nargs=-1, required=True)
@click.option("--pretty", is_flag=True, help="Human-readable output.")
@with_client
def inspect(client, services, pretty):
    """Show services in detail, with their load-balancer table."""
    found = [client.service(ref) for ref in services]
    if not pretty:
        return print_json(found)
    for s in found:
        spec, deploy = s["spec"], s["spec"]["deploy"]
        console.print(f"ID:\t\t{s['id']}\nName:\t\t{s['name']}\nStack:\t\t{s['stack']}\n"
                      f"Mode:\t\t{deploy['mode']}" + (f"\n Replicas:\t{deploy['replicas']}"
                                                       if deploy["mode"] == "replicated" else ""))
        console.print(f"Image:\t\t{spec['image']}\nVersion:\t{s['version']} (tasks: {s['spec_version']})")
        status = s.get("update_status")
        if status:
            console.print(f"UpdateStatus:\n State:\t\t{status['state']}\n Message:\t{status.get('message', '')}")
        if spec["deploy"]["placement"]["constraints"]:
            console.print("Placement:\n Constraints:\t" + ", ".join(
                f"{c['field']}{c['operator']}{c['value']}" for c in deploy["placement"]["constraints"]))
        uc = deploy["update_config"]
        console.print(f"UpdateConfig:\n Parallelism:\t{uc['parallelism']}\n Delay:\t\t{uc['delay']}s\n"
                      f" On failure:\t{uc['failure_action']}\n Order:\t\t{uc['order']}")
        if s.get("dangerous_options"):
            console.print("Runs with (gives its tasks the host):\n " + "\n ".join(s["dangerous_options"]))
        if s["summary"]["ports"]:
            console.print(f"Ports:\t\t{s['summary']['ports']}")
        for lb_id, ports in (s.get("lb") or {}).items():
            for port, entry in ports.items():
                console.print(f"Load balancer {lb_id}, port {port}: " + ", ".join(
                    f"{e['address']}:{e['port']} {e['state']} ({e.get('connections', 0)} open)"
                    for e in entry.get("endpoints", [])))
        console.print()


@group.command("scale")
@click.argument("pairs", nargs=-1, required=True)
@click.option("--detach", "-d", is_flag=True, help="Do not wait for the service to converge.")
@with_client
def scale(client, pairs, detach):
    """Scale services: SERVICE=REPLICAS ..."""
    wanted = []
    for pair in pairs:
        name, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            fail(f"invalid scale specifier {pair!r}: expected SERVICE=REPLICAS")
        wanted.append((name, int(count)))
    for name, count in wanted:
        client.scale(name, count)
        console.print(f"{name} scaled to {count}")
    if not detach:
        wait_converged(client, [n for n, _ in wanted])


@group.command("logs")
@click.argument("service")
@click.option("--follow", "-f", is_flag=True, help="Follow the output.")
@click.option("--tail", "-n", default="all", help="Lines from the end of each task's log.")
@click.option("--timestamps", "-t", is_flag=True, help="Show timestamps.")
@with_client
def logs(client, service, follow, tail, timestamps):
    """Show the logs of every task of a service, each line prefixed with `task@node |`."""
    try:
        for line in client.logs(service, follow=follow, tail=tail, timestamps=timestamps):
            click.echo(line)
    except KeyboardInterrupt:
        pass


@group.command("exec", context_settings={"allow_interspersed_args": False})  # flags after SERVICE are the command's
@click.option("--interactive", "-i", is_flag=True, help="Send this terminal's stdin to the command.")
@click.option("--tty", "-t", is_flag=True, help="Give the command a TTY.")
@click.argument("target", metavar="SERVICE[.SLOT]")
@click.argument("command", nargs=-1, required=True)
@with_client
def exec_(client, interactive, tty, target, command):
    """Run a command in a running task of a service, wherever it runs (the first task, or SLOT's),
    and exit with its exit code: swarmpy service exec -it web.2 -- sh"""
    from swarmpy.cli import exec_session
    if command[0] == "--":  # options end at SERVICE already: a `--` after it is only the usual separator
        command = command[1:]
    if not command:
        raise click.UsageError("no command to run: swarmpy service exec SERVICE[.SLOT] -- CMD [ARG...]")
    service, _, slot = target.rpartition(".")
    if not (service and slot.isdigit()):
        service, slot = target, ""
    sys.exit(exec_session.run(client, service, int(slot) if slot else None, list(command), interactive, tty))


@group.command("rm")
@click.argument("services", nargs=-1, required=True)
@with_client
def rm(client, services):
    """Remove services."""
    for ref in services:
        client.remove_service(ref)
        console.print(ref)
