"""`swarmpy stack`: deploy and manage Compose stacks."""

import base64
import json
import os
import sys
import time
from urllib.parse import urlparse

import click
import yaml

from swarmpy.cli.common import (EXIT_ERROR, TASK_COLUMNS, console, fail, format_option,
                                show, task_rows, with_client)
from swarmpy.cli.plan import render as render_plan
from swarmpy.cli.progress import wait_converged
from swarmpy.cli.service import SERVICE_COLUMNS, service_rows
from swarmpy.client import ClientError
from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import validation


@click.group("stack")
def group():
    """Deploy, list and remove stacks (Compose files with `deploy:` keys)."""


def _load(files, name: str | None = None):
    """Load the Compose files; on a problem, one `error:` line each and exit 1 (nothing is sent)."""
    try:
        stack, warnings = load_stack(list(files), name=name)
    except ComposeError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_ERROR)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return stack


prune_option = click.option("--prune", is_flag=True, help="Remove services that are no longer in the files.")
files_option = click.option("-c", "--compose-file", "files", multiple=True, required=True,
                            help="Compose file (repeat to merge).")


@group.command("config")
@files_option
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_cmd(files, fmt):
    """Print the normalized stack of the Compose files; needs no cluster."""
    stack = _load(files)
    normalized = _readable(stack.to_dict())
    for service in normalized.get("services", {}).values():  # a global service has no replica count
        if service.get("deploy", {}).get("mode", "").startswith("global"):
            service["deploy"].pop("replicas", None)
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


def _object_contents(stack) -> dict:
    """The content of the stack's secrets and configs, read here from their files or variables,
    base64 for the trip: the manager never needs the user's files."""
    out: dict = {"secrets": {}, "configs": {}}
    for kind in ("secrets", "configs"):
        for key, obj in getattr(stack, kind).items():
            if obj.external:
                continue
            if obj.file:
                try:
                    data = open(obj.file, "rb").read()
                except OSError as e:
                    fail(f"{kind}.{key}: cannot read {obj.file}: {e.strerror}")
            elif obj.environment:
                data = os.environ.get(obj.environment, "").encode()
            elif obj.data is not None:
                data = base64.b64decode(obj.data)
            else:
                continue
            out[kind][key] = base64.b64encode(data).decode()
    return out


def _checked(files, name: str):
    """The stack of the files, checked by the manager's own rules before anything is sent."""
    stack = _load(files, name)
    problems = validation.stack_problems(name, stack)
    for path, message in problems:
        click.echo(f"error: {path}: {message}", err=True)
    if problems:
        sys.exit(EXIT_ERROR)
    return stack


def _show_plan(client, files, name: str, prune: bool, fmt: str) -> None:
    stack = _checked(files, name)
    plan = client.plan(name, stack.to_dict(), _object_contents(stack), prune)
    if fmt == "json":
        click.echo(json.dumps(plan, indent=2))
    else:
        for line in render_plan(plan):
            click.echo(line)


@group.command("deploy")
@files_option
@prune_option
@click.option("--detach", "-d", is_flag=True, help="Return at once instead of waiting for the services to converge.")
@click.option("--timeout", default=300.0, show_default=True, type=float,
              help="Seconds to wait for the services to converge.")
@click.option("--plan", "plan_only", is_flag=True,
              help="Only print what the deploy would change (per service and field) and which tasks it would "
                   "replace; change nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="With --plan: the plan as text or JSON.")
@click.argument("name")
@with_client
def deploy(client, files, prune, detach, timeout, plan_only, fmt, name):
    """Deploy a new stack or update an existing one (--plan: only say what would change)."""
    if plan_only:
        return _show_plan(client, files, name, prune, fmt)
    stack = _checked(files, name)
    try:  # the versions before: an update this deploy starts is newer (its outcome is the command's)
        before = {s["name"]: s["spec_version"] for s in client.stack_services(name)}
    except ClientError as e:
        if e.status != 404:
            raise
        before = {}  # a new stack
    result = client.deploy(name, stack.to_dict(), _object_contents(stack), prune)
    changed = [s["name"] for s in result["services"] if s["changed"]]
    for s in result["services"]:
        if not s.get("in_file", True):
            console.print(f"Keeping service {s['name']}: no longer in the file (--prune removes it)")
            continue
        verb = ("Updating" if s["version"] > 1 else "Creating") if s["changed"] else "Unchanged"
        console.print(f"{verb} service {s['name']}")
    for removed in result["removed"]:
        console.print(f"Removing service {removed}")
    if not detach and changed:
        wait_converged(client, changed, timeout, since={n: before.get(n, 0) for n in changed})
    _print_published(client, name)


def _print_published(client, stack: str) -> None:
    """Where the stack answers: each ingress port on every manager (the routing mesh)."""
    host = urlparse(client.url).hostname
    for service in client.stack_services(stack):
        for port in filter(None, service["ports"].split(", ")):
            if port.startswith("*:"):
                published, _, target = port[2:].partition("->")
                protocol = target.rpartition("/")[2]
                console.print(f"{service['name']} answers at {host}:{published}/{protocol} "
                              "(and on every other manager)")


@group.command("diff")
@files_option
@prune_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("name")
@with_client
def diff(client, files, prune, fmt, name):
    """What `stack deploy` of the files would change; changes nothing (as `stack deploy --plan`)."""
    _show_plan(client, files, name, prune, fmt)


@group.command("ls")
@format_option
@with_client
def ls(client, fmt):
    """List stacks."""
    show(fmt, client.stacks(), ["NAME", "SERVICES"], lambda stacks: [[s["name"], s["services"]] for s in stacks])


@group.command("ps")
@click.argument("name")
@format_option
@with_client
def ps(client, name, fmt):
    """List the tasks of a stack."""
    show(fmt, client.stack_tasks(name), TASK_COLUMNS, task_rows)


@group.command("services")
@click.argument("name")
@format_option
@with_client
def services(client, name, fmt):
    """List the services of a stack."""
    show(fmt, client.stack_services(name), SERVICE_COLUMNS, service_rows)


@group.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("--detach", "-d", is_flag=True, help="Return at once instead of waiting for the containers to go.")
@click.option("--timeout", default=120.0, show_default=True, type=float)
@with_client
def rm(client, names, detach, timeout):
    """Remove stacks (their services, their containers on every node, their secrets and configs)."""
    for name in names:
        for service in client.remove_stack(name)["removed"]:
            console.print(f"Removing service {service}")
    if detach:
        return
    deadline = time.time() + timeout
    while any(client.tasks(stack=name) for name in names):
        if time.time() > deadline:
            fail(f"the stack's containers were not all removed within {timeout:.0f} s")
        time.sleep(0.25)
