"""What the CLI modules share: the client, errors and exit codes, tables, times."""

from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any

import click
from rich.console import Console

from swarmpy.client import Client, ClientError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

EXIT_ERROR = 1
EXIT_NOT_IMPLEMENTED = 2


def not_implemented(what: str):
    click.echo(f"swarmpy {what}: not implemented yet", err=True)
    sys.exit(EXIT_NOT_IMPLEMENTED)


def fail(message: str, code: int = EXIT_ERROR):
    """Print `error: <message>` on stderr and exit; never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


host_option = click.option("--host", "-H", envvar="SWARMPY_HOST", default=None,
                           help="Manager API URL (default: this machine's cluster, or $SWARMPY_HOST).")
state_dir_option = click.option("--state-dir", envvar="SWARMPY_STATE_DIR", default=None,
                                type=click.Path(file_okay=False),
                                help="State dir of this machine's cluster (default /var/lib/swarmpy).")
format_option = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="Output format.")


def with_client(f):
    """Give the command a `client` (from --host / --state-dir) and turn API errors into `error:` lines."""
    @host_option
    @state_dir_option
    @functools.wraps(f)
    def wrapper(*args, host=None, state_dir=None, **kwargs):
        try:
            return f(*args, client=Client.from_env(host, state_dir), **kwargs)
        except ClientError as e:
            fail(str(e))
    return wrapper


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def show(fmt: str, items: list, columns: list[str], rows) -> None:
    """A listing as JSON (`--format json`) or as the table `rows(items)` makes."""
    if fmt == "json":
        print_json(items)
    else:
        print_table(columns, rows(items))


def print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table as docker prints one: upper-case headers, columns padded, never wrapped."""
    cells = [columns] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        click.echo("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def ago(timestamp: float | None, now: float | None = None) -> str:
    """`3 seconds ago`, `About a minute ago`, as docker prints durations."""
    if not timestamp:
        return ""
    seconds = max(0, int((now or time.time()) - timestamp))
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''} ago"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute ago"
    if minutes < 60:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    if hours == 1:
        return "About an hour ago"
    if hours < 48:
        return f"{hours} hours ago"
    return f"{hours // 24} days ago"


def short_id(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


def task_rows(tasks: list[dict], now: float | None = None) -> list[list[str]]:
    """`docker service ps` rows: the live task of each slot, its older tasks indented below with ` \\_ `."""
    by_slot: dict[Any, list[dict]] = {}
    for t in tasks:
        slot = (t["service_name"], t["slot"] if t["slot"] is not None else t["node_id"])
        by_slot.setdefault(slot, []).append(t)

    def slot_key(item):
        (service, slot), _ = item
        return service, (0, slot) if isinstance(slot, int) else (1, str(slot))

    rows = []
    for _, group in sorted(by_slot.items(), key=slot_key):
        group.sort(key=lambda t: (t["desired_state"] == "shutdown", -t["created_at"]))
        for i, t in enumerate(group):
            state = t["state"].capitalize()
            ports = ", ".join(f"*:{e['port']}->{e['target']}/{e['protocol']}" for e in t.get("endpoints") or []
                              if e.get("mode") == "host")
            rows.append([short_id(t["id"]), ("" if i == 0 else " \\_ ") + t["name"], t.get("image", ""),
                         t.get("node", ""), t["desired_state"].capitalize(),
                         f"{state} {ago(t.get('updated_at') or t.get('created_at'), now)}",
                         t.get("error") or "", ports])
    return rows


TASK_COLUMNS = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"]
