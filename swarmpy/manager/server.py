"""`swarmpy manager`: the API on every manager; as child processes, the control
loops (which run on the leader: `swarmpy.manager.loops`) and, unless told not to,
the load balancer."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlparse

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from swarmpy import pki
from swarmpy.lifetime import stop_child
from swarmpy.manager.api import create_app
from swarmpy.manager.component import SWITCH_INTERVAL
from swarmpy.manager.context import ManagerContext
from swarmpy.manager.loops import LoopsProcess
from swarmpy.settings import StateDir

log = logging.getLogger(__name__)

# Outlives a store failover (Sentinel needs up to ~5 s), so the managers that survive one are never
# shown Unreachable, nor the new leader missing, while they reconnect.
ALIVE_TTL = 15.0
started_at = time.time()


def _announce(ctx: ManagerContext, node_id: str | None, stop: threading.Event) -> None:
    """Say every second that this manager is alive, and on which node it runs; keep the others'
    addresses in the state dir, for the CLI here to reach one when this one is gone."""
    known: list[str] = []
    while not stop.is_set():
        try:
            nid = node_id or ctx.store.local_node_id(socket.gethostname())
            ctx.store.mark_alive("manager", ctx.manager_id, {
                "node_id": nid, "api_url": ctx.config.api_url, "machine": socket.gethostname(),
                "pid": os.getpid(), "started_at": started_at}, ALIVE_TTL)
            others = sorted({m["api_url"] for m in ctx.store.alive("manager").values()} - {ctx.config.api_url})
            if others != known:
                ctx.state.managers_file.write_text("".join(f"{u}\n" for u in others))
                known = others
        except Exception as e:
            log.warning("manager: cannot reach the store: %s", e)
        stop.wait(1.0)


def _slashes_decoded(app):
    """cheroot leaves %2F encoded in PATH_INFO (other escapes it decodes): the API's names may hold a
    slash (`/secrets/a%2Fb` is the secret `a/b`), as with any other WSGI server."""
    def wrapped(environ, start_response):
        environ["PATH_INFO"] = environ.get("PATH_INFO", "").replace("%2F", "/").replace("%2f", "/")
        return app(environ, start_response)
    return wrapped


def certificate(state: StateDir, api_url: str) -> tuple[str, str]:
    """This manager's certificate and key for the address it is reached at (made, or renewed,
    with the cluster CA's key when need be)."""
    addresses = [urlparse(api_url).hostname, "127.0.0.1", "localhost"]
    cert, key = state.tls_dir / "api.crt", state.tls_dir / "api.key"
    if pki.needs_certificate(cert, addresses):
        pki.issue(state.ca_file, state.tls_dir / "ca.key", cert, key, addresses)
    return str(cert), str(key)


def _first_start(ctx: ManagerContext) -> None:
    """Cluster-wide settings, written once by the first manager; indexes a store written
    by an older swarmpy lacks."""
    info = ctx.store.cluster_info()
    if "id" not in info:
        ctx.store.set_cluster_info(id=uuid.uuid4().hex[:25], created_at=time.time(),
                                   heartbeat=ctx.config.heartbeat, addr_pool=ctx.config.default_addr_pool,
                                   subnet_size=ctx.config.subnet_size)
    ctx.store.build_running_index()
    ctx.store.add_sentinels(*ctx.config.sentinels[-1:])  # its own host's (promote puts it last)


def run(state: StateDir, node_id: str | None = None, host: str = "0.0.0.0", port: int | None = None,
        lb: bool = True, threads: int = 16) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    manager_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    ctx = ManagerContext.from_state_dir(state, manager_id)
    for attempt in range(50):
        try:
            _first_start(ctx)
            break
        except Exception as e:  # Redis may still be starting
            if attempt == 49:
                raise
            log.warning("manager: store not ready (%s); retrying", e)
            time.sleep(0.2)
    stop = threading.Event()
    threading.Thread(target=_announce, args=(ctx, node_id, stop), name="announce", daemon=True).start()

    loops = LoopsProcess(state, manager_id)
    loops.start()
    lb_process = None
    if lb:
        args = [sys.executable, "-m", "swarmpy", "lb", "--state-dir", str(state.path),
                "--parent", str(os.getpid())]
        if node_id:
            args += ["--node-id", node_id]
        lb_process = subprocess.Popen(args)
    server = wsgi.Server((host, port or ctx.config.api_port), _slashes_decoded(create_app(ctx)), numthreads=threads,
                         server_name="swarmpy", timeout=3600)
    if urlparse(ctx.config.api_url).scheme == "https":
        server.ssl_adapter = BuiltinSSLAdapter(*certificate(state, ctx.config.api_url))

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    log.warning("manager %s: API on %s:%s", manager_id, host, port or ctx.config.api_port)
    try:
        server.safe_start()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        loops.stop()
        ctx.store.forget_alive("manager", manager_id)
        if lb_process is not None:
            stop_child(lb_process, 10)
        server.stop()
