"""Ports: short and long syntax normalized to Port(target, published, protocol, mode)."""

import pytest

from swarmpy.compose.ports import parse_port
from swarmpy.model import Port


@pytest.mark.parametrize(
    "entry, ports, host_ip",
    [
        ("80", [Port(80)], None),
        (80, [Port(80)], None),
        ("8080:80", [Port(80, 8080)], None),
        ("127.0.0.1:8080:80", [Port(80, 8080)], "127.0.0.1"),
        ("127.0.0.1::80", [Port(80)], "127.0.0.1"),
        ("[::1]:6001:6001", [Port(6001, 6001)], "[::1]"),
        ("::1:6000:6000", [Port(6000, 6000)], "::1"),
        ("53:53/udp", [Port(53, 53, "udp")], None),
        ("8080-8081:80-81", [Port(80, 8080), Port(81, 8081)], None),
        ("3000-3002", [Port(3000), Port(3001), Port(3002)], None),
        ("8000-8002:80", [Port(80, 8000), Port(80, 8001), Port(80, 8002)], None),
        ({"target": 80}, [Port(80)], None),
        ({"target": 443, "published": "8443", "protocol": "tcp", "mode": "host"}, [Port(443, 8443, "tcp", "host")], None),
        ({"target": "53", "published": 53, "protocol": "UDP", "host_ip": "10.0.0.1"}, [Port(53, 53, "udp")], "10.0.0.1"),
    ],
)
def test_port_syntaxes(entry, ports, host_ip):
    assert parse_port(entry) == (ports, host_ip)


@pytest.mark.parametrize(
    "entry, message",
    [
        ("80/tcpx", "unknown protocol"),
        ("http:80", "is not a port number or range"),
        ("8080-8082:80-81", "ranges differ in size"),
        ("70000:80", "not a port number"),
        ("0", "not a port number"),
        ("90-80", "ends before it starts"),
        ({"target": 80, "published": "8000-8010"}, "published port range"),
        ({"target": 80, "mode": "bridge"}, "unknown mode"),
        ({"target": "web"}, "not a port number"),
        (True, "is not a port"),
    ],
)
def test_bad_ports(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_port(entry)
