"""`swarmpy events`: the cluster's events as they happen, filtered, like `docker events`."""

from __future__ import annotations

import datetime
import json
import re
import time

import click

from swarmpy.cli.common import with_client
from swarmpy.model.records import EVENT_TYPES as TYPES
POLL_MS = 10_000  # each request waits this long for an event (the API allows 30 s)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)\Z")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
_EVENT_ID = re.compile(r"\d+-\d+\Z")


def since_id(text: str, now: float | None = None) -> str:
    """`--since` as the event id it starts after: a duration back from now (`10m`, `30s`, `2h`),
    a Unix time, a date (ISO 8601), or an event id itself. Event ids are their milliseconds."""
    now = time.time() if now is None else now
    if _EVENT_ID.match(text):
        return text
    if m := _DURATION.match(text):
        at = now - float(m.group(1)) * _UNITS[m.group(2)]
    else:
        try:
            at = float(text)
        except ValueError:
            try:
                parsed = datetime.datetime.fromisoformat(text)
            except ValueError:
                raise click.BadParameter(f"{text!r}: a duration (10m), a Unix time, a date (2024-06-10T12:00) "
                                         "or an event id") from None
            at = (parsed if parsed.tzinfo else parsed.astimezone()).timestamp()
    return f"{max(0, int(at * 1000))}-0"


def parse_filters(filters: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(types, names) of `--filter type=service --filter name=web ...`; the values of one key are or-ed."""
    types, names = [], []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or not value or key not in ("type", "name"):
            raise click.BadParameter(f"{f!r}: expected type=<{'|'.join(TYPES)}> or name=<name>",
                                     param_hint="--filter")
        if key == "type" and value not in TYPES:
            raise click.BadParameter(f"type {value!r}: one of {', '.join(TYPES)}", param_hint="--filter")
        (types if key == "type" else names).append(value)
    return types, names


def event_line(event: dict) -> str:
    """`2024-06-10T12:00:00.123456+02:00 service update 3f9a... (name=shop_web, version=2)`."""
    at = datetime.datetime.fromtimestamp(float(event.get("time") or 0)).astimezone().isoformat()
    attributes = ", ".join(f"{k}={v}" for k, v in event.items()
                           if k not in ("kind", "action", "id", "time", "event_id") and v != "")
    return f"{at} {event['kind']} {event['action']} {event['id']}" + (f" ({attributes})" if attributes else "")


@click.command("events")
@click.option("--since", default=None, help="Show events since then: 10m, a Unix time, a date, or an event id "
                                            "(default: only new ones).")
@click.option("--until", "until", default=None, help="Stop at this time (same forms as --since; default: follow "
                                                     "until Ctrl-C).")
@click.option("--filter", "-f", "filters", multiple=True,
              help="type=node|service|task|network|stack|secret|config|container, or name=NAME (repeat; a "
                   "service's name matches its tasks too).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One line per event, or one JSON object per line.")
@with_client
def events(client, since, until, filters, fmt):
    """Stream the cluster's events (services, tasks, nodes, networks...) as they happen, like `docker events`."""
    types, names = parse_filters(filters)
    cursor = since_id(since) if since else None
    end = int(since_id(until).split("-")[0]) if until else None
    try:
        while True:
            answer = client.events(since=cursor, block_ms=POLL_MS, types=types, names=names)
            for event in answer["events"]:
                if not event["id"]:
                    continue  # a wake-up mark for the manager's loops, about nothing
                if end is not None and int(event["event_id"].split("-")[0]) > end:
                    return
                click.echo(json.dumps(event) if fmt == "json" else event_line(event))
            cursor = answer["last"]
            if end is not None and time.time() * 1000 > end:
                return
    except KeyboardInterrupt:
        pass
