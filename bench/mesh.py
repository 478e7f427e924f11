"""Figure 7, the routing mesh: wrk against the same three nginx backends (one per lab
node), at 1, 8, 64 and 256 connections, four ways, alternating: directly at one
backend, through swarmpy's mesh on this machine by its kernel path and by its proxy,
and through HAProxy in TCP mode balancing the same backends."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import BenchError, Figure
from bench.env import Env, ensure_packages

NGINX = "swarmpy/nginx:latest"
MESH_PORT, HAPROXY_PORT = 18800, 18801

STACK = f"""
services:
  web:
    image: {NGINX}
    ports: ["{MESH_PORT}:80"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
        constraints: [node.role==worker]
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    """Requests/s, p50 and p99 latency (ms), and errors from `wrk --latency` output."""
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not m:
            raise BenchError(f"wrk printed no {pct}% latency:\n{output}")
        return float(m.group(1)) * _UNITS[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise BenchError(f"wrk printed no Requests/sec:\n{output}")
    errors = 0
    for m in re.finditer(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(x) for x in m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non2xx.group(1)) if non2xx else 0
    return {"rps": float(rps.group(1)), "p50": latency("50"), "p99": latency("99"), "errors": errors}


def wrk(url: str, duration: int, connections: int, threads: int) -> dict:
    done = subprocess.run(["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration}s", url],
                          capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed on {url}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def haproxy_config(backends: list[tuple[str, int]], bind: str) -> str:
    servers = "\n".join(f"    server s{i} {a}:{p}" for i, (a, p) in enumerate(backends, 1))
    return f"""global
    maxconn 8000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend mesh
    bind {bind}:{HAPROXY_PORT}
    default_backend backends
backend backends
    balance roundrobin
{servers}
"""


def backends_of(cluster) -> list[tuple[str, int]]:
    tasks = cluster.json("service", "ps", "mesh_web")
    return [(e["address"], e["port"]) for t in tasks if t["state"] == "running" for e in t["endpoints"]]


def prepare() -> None:
    """The mesh figure's own needs, before the lab is made (its nodes get the nginx image)."""
    from swarmpy.lab import images as lab_images
    ensure_packages("wrk", "haproxy", "nginx-light")
    lab_images.build_preset("nginx")


CONCURRENCY = (1, 8, 64, 256)


def run(env: Env, runs: int = 3, duration: int = 8, concurrency: tuple[int, ...] = CONCURRENCY) -> list[Figure]:
    """At each concurrency, alternating: one backend directly, the mesh's kernel path (the
    manager's lab address: iptables DNAT), the mesh's proxy (loopback, which the kernel leaves to
    it), and HAProxy over the same three backends on the same address as the kernel path."""
    paths = ("direct", "kernel", "proxy", "haproxy")
    results: dict[tuple[str, int], list[dict]] = {(p, c): [] for p in paths for c in concurrency}
    cluster, host = env.cluster, env.lab.host_address
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mesh.yml"
        path.write_text(STACK)
        cluster.cli("stack", "deploy", "-c", str(path), "mesh")
        try:
            backends = backends_of(cluster)
            if len(backends) != 3:
                raise BenchError(f"expected 3 nginx backends, found {backends}")
            config = Path(tmp) / "haproxy.cfg"
            config.write_text(haproxy_config(backends, host))
            haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            try:
                time.sleep(1)
                urls = {"direct": f"http://{backends[0][0]}:{backends[0][1]}/", "kernel": f"http://{host}:{MESH_PORT}/",
                        "proxy": f"http://127.0.0.1:{MESH_PORT}/", "haproxy": f"http://{host}:{HAPROXY_PORT}/"}
                for url in urls.values():  # warm up
                    wrk(url, 1, 8, 2)
                for _ in range(runs):
                    for c in concurrency:
                        for name, url in urls.items():
                            results[name, c].append(wrk(url, duration, c, min(2, c)))
            finally:
                haproxy.terminate()
                haproxy.wait(10)
        finally:
            cluster.cli("stack", "rm", "mesh", timeout=300)
    for (name, c), rows in results.items():
        if any(r["errors"] for r in rows):
            raise BenchError(f"{name} at {c} connections: requests failed: {json.dumps(rows)}")

    def column(name, c, key):
        return [r[key] for r in results[name, c]]

    figures = []
    for c in concurrency:
        load = f"wrk -t{min(2, c)} -c{c} -d{duration}s over keep-alive connections, 3 nginx backends"
        figures += [
            Figure(f"mesh, kernel, {c} conn: requests/s", "req/s", "HAProxy, TCP mode", column("kernel", c, "rps"),
                   column("haproxy", c, "rps"), aim=">= 1.2x", note=load),
            Figure(f"mesh, kernel, {c} conn: p50", "ms", "HAProxy, TCP mode", column("kernel", c, "p50"),
                   column("haproxy", c, "p50")),
            Figure(f"mesh, kernel, {c} conn: p99", "ms", "HAProxy, TCP mode", column("kernel", c, "p99"),
                   column("haproxy", c, "p99"), aim="<= 1.0x"),
            Figure(f"mesh, proxy, {c} conn: requests/s", "req/s", "HAProxy, TCP mode", column("proxy", c, "rps"),
                   column("haproxy", c, "rps"), note="the asyncio proxy (least-conn, PROXY protocol, loopback)"),
            Figure(f"mesh, proxy, {c} conn: p99", "ms", "HAProxy, TCP mode", column("proxy", c, "p99"),
                   column("haproxy", c, "p99")),
            Figure(f"mesh, kernel, {c} conn: requests/s vs direct", "req/s", "one backend, directly",
                   column("kernel", c, "rps"), column("direct", c, "rps"), aim=">= 0.9x" if c == 64 else ""),
        ]
    return figures
