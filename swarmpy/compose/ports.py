"""Service ports: short syntax (`"127.0.0.1:8080-8081:80-81/udp"`) and long syntax -> `Port`s."""

from __future__ import annotations

import re
from typing import Any

from swarmpy.model import Port

PROTOCOLS = ("tcp", "udp", "sctp")
MODES = ("ingress", "host")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_port(entry: Any) -> tuple[list[Port], str | None]:
    """One `ports:` entry -> its Ports (ranges expanded) and the host IP it named, if any.

    Raises ValueError with a message for the user. swarmpy publishes on every
    address, as Swarm does, so a host IP is returned for the caller to warn about.
    """
    if isinstance(entry, bool):
        raise ValueError(f"{entry!r} is not a port")
    if isinstance(entry, int):
        return [Port(target=_port_number(entry, "target"))], None
    if isinstance(entry, str):
        return _parse_short(entry)
    if isinstance(entry, dict):
        return _parse_long(entry)
    raise ValueError(f"{entry!r} is not a port")


def port_key(entry: Any) -> Any:
    """What makes two entries the same port when files merge: {ip, target, published, protocol}."""
    try:
        ports, host_ip = parse_port(entry)
    except ValueError:
        return repr(entry)
    return (host_ip, tuple((p.target, p.published, p.protocol) for p in ports))


def _parse_short(text: str) -> tuple[list[Port], str | None]:
    spec, _, protocol = text.strip().partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"{text!r}: unknown protocol {protocol!r} (tcp, udp or sctp)")
    host, _, container = spec.rpartition(":")
    host_ip, _, published = host.rpartition(":")
    targets = _range(container, text, "container port")
    publisheds = _range(published, text, "published port") if published else []
    if publisheds and len(targets) > 1 and len(publisheds) != len(targets):
        raise ValueError(f"{text!r}: the published and container port ranges differ in size")
    if not publisheds:
        ports = [Port(target=t, protocol=protocol) for t in targets]
    elif len(targets) == 1:  # 8000-8002:80: each published port leads to the one target
        ports = [Port(target=targets[0], published=p, protocol=protocol) for p in publisheds]
    else:
        ports = [Port(target=t, published=p, protocol=protocol) for t, p in zip(targets, publisheds)]
    return ports, host_ip or None


def _parse_long(entry: dict) -> tuple[list[Port], str | None]:
    target = _port_number(_integer(entry.get("target"), "target"), "target")
    published = entry.get("published")
    if isinstance(published, str):
        if "-" in published.strip().lstrip("-"):
            raise ValueError(f"published port range {published!r} is not supported in long syntax; "
                             "use the short syntax 'START-END:TARGET'")
        published = published.strip() or None
    if published is not None:
        published = _port_number(_integer(published, "published"), "published")
    protocol = str(entry.get("protocol") or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (tcp, udp or sctp)")
    mode = str(entry.get("mode") or "ingress")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (ingress or host)")
    return [Port(target=target, published=published, protocol=protocol, mode=mode)], entry.get("host_ip") or None


def _range(text: str, whole: str, what: str) -> list[int]:
    match = _RANGE.match(text.strip())
    if not match:
        raise ValueError(f"{whole!r}: {what} {text!r} is not a port number or range")
    start = _port_number(int(match.group(1)), what)
    end = _port_number(int(match.group(2) or start), what)
    if end < start:
        raise ValueError(f"{whole!r}: {what} range {text!r} ends before it starts")
    return list(range(start, end + 1))


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} {value!r} is not a port number")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a port number") from None


def _port_number(number: int, what: str) -> int:
    if not 0 < number <= 65535:
        raise ValueError(f"{what} {number} is not a port number (1-65535)")
    return number
