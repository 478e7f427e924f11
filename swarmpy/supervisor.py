"""`swarmpy supervise`: keeps the parts `init` or `promote` started on a machine running.

One supervisor per state dir starts each part (the embedded Redis, the
manager, the load balancer, the worker) as a child of its own, and starts it
again when it dies, after a pause that doubles with each quick death (0.5 s
up to 30 s; a part that ran a minute starts over at 0.5 s), the way systemd's
`Restart=always` with a backoff does. The parts are siblings: a manager that
dies no longer takes its load balancer with it. Every child dies with the
supervisor (PR_SET_PDEATHSIG), so a killed supervisor leaves nothing behind
that would work against the next one.

What each part does is written to `run/parts.json` (for `/health` on this
machine) and to the store (for `node ls`): running, or waiting to restart,
with its restarts and how it last ended.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from swarmpy.lifetime import (FIRST_BACKOFF, StopSignals, describe_exit, die_with_parent, next_backoff,
                              stop_child)
from swarmpy.settings import StateDir

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0
REPORT_EVERY = 1.0
REPORT_TTL = 5.0
PARTS = ("redis", "sentinel", "manager", "lb", "worker")  # the order they start in (and stop in reverse)


@dataclass
class Part:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = FIRST_BACKOFF
    due: float = 0.0  # when a dead part starts again
    last_exit: str = ""
    log_file: str = ""

    def view(self) -> dict:
        running = self.process is not None and self.process.poll() is None
        return {"state": "running" if running else "restarting", "pid": self.process.pid if running else None,
                "since": self.started_at if running else None, "restarts": self.restarts,
                "last_exit": self.last_exit, **({} if running else {"restart_at": self.due})}


@dataclass
class Supervisor:
    state: StateDir
    parts: list[Part]
    node_id: str | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self, part: Part) -> None:
        log_file = open(part.log_file, "ab")
        try:
            part.process = subprocess.Popen(part.command, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_child_of(os.getpid()))
        except OSError as e:
            part.process, part.last_exit = None, f"cannot start: {e}"
            self.died(part)
            return
        finally:
            log_file.close()
        part.started_at = time.time()
        self.state.pid_file(part.name).write_text(f"{part.process.pid}\n")

    def died(self, part: Part) -> None:
        now = time.time()
        pause, part.backoff = next_backoff(part.backoff, now - part.started_at if part.started_at else 0.0)
        part.due = now + pause
        part.restarts += 1
        log.warning("supervisor: %s %s; starting it again in %.1f s", part.name, part.last_exit,
                    part.due - now)

    def check(self) -> bool:
        """Restart what died and is due; True when something changed."""
        changed = False
        for part in self.parts:
            if part.process is not None:
                code = part.process.poll()
                if code is None:
                    continue
                part.process, part.last_exit = None, describe_exit(code)
                self.state.pid_file(part.name).unlink(missing_ok=True)
                self.died(part)
                changed = True
            if time.time() >= part.due and not self.stopping.is_set():
                self.start(part)
                changed = True
        return changed

    def report(self) -> dict:
        status = {"pid": os.getpid(), "machine": socket.gethostname(), "node_id": self.node_id,
                  "state_dir": str(self.state.path), "updated_at": time.time(),
                  "parts": {p.name: p.view() for p in self.parts}}
        tmp = self.state.parts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1) + "\n")
        tmp.replace(self.state.parts_file)
        return status

    def stop_all(self) -> None:
        """In reverse order of starting (the store last), each SIGTERMed, then SIGKILLed."""
        for part in reversed(self.parts):
            if part.process is None or part.process.poll() is not None:
                continue
            stop_child(part.process, STOP_TIMEOUT)
            self.state.pid_file(part.name).unlink(missing_ok=True)

    def run(self) -> None:
        self.state.run_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.state.pid_file("supervisor")
        pid_file.write_text(f"{os.getpid()}\n")  # systemd starts it too, not only `init`
        stops = StopSignals()
        publisher = StatusPublisher(self.state, self)
        try:
            reported = 0.0
            while not self.stopping.is_set():
                changed = self.check()
                if changed or time.time() - reported >= REPORT_EVERY:
                    publisher.publish(self.report())
                    reported = time.time()
                if stops.wait(0.1):
                    self.stopping.set()
        finally:
            self.stop_all()
            self.state.parts_file.unlink(missing_ok=True)
            pid_file.unlink(missing_ok=True)
            publisher.forget()


def _child_of(parent: int):
    def setup() -> None:
        os.setsid()  # its own process group: a terminal's ^C reaches the supervisor, which stops it
        die_with_parent(parent, signal.SIGKILL)
    return setup


class StatusPublisher:
    """The parts' states in the store, for `node ls` on any manager (best effort: the store may be
    one of the parts, or away)."""

    def __init__(self, state: StateDir, supervisor: Supervisor):
        self.state, self.supervisor = state, supervisor
        self.name = f"{socket.gethostname()}:{state.path}"
        self._store = None

    def store(self):
        if self._store is None:
            from swarmpy.store import Store, replication
            config = self.state.load()
            self._store = Store.from_config(config, replication.host_user(config), socket_timeout=1,
                                            socket_connect_timeout=1, retry_on_timeout=False)
        return self._store

    def publish(self, status: dict) -> None:
        try:
            store = self.store()
            if status["node_id"] is None:
                status["node_id"] = self.supervisor.node_id = store.local_node_id(socket.gethostname())
            store.mark_alive("supervisor", self.name, status, REPORT_TTL)
        except Exception as e:  # noqa: BLE001 - any fault of the store: it may be a part that is restarting
            log.debug("supervisor: cannot report to the store: %s", e)

    def forget(self) -> None:
        try:
            self.store().forget_alive("supervisor", self.name)
        except Exception:  # noqa: BLE001
            pass


def commands(state: StateDir, names: list[str], node_id: str | None, local_node: bool) -> list[Part]:
    """The command line of each part, in starting order."""
    swarmpy = [sys.executable, "-m", "swarmpy"]
    at = ["--state-dir", str(state.path)]
    on_node = ["--node-id", node_id] if node_id else []
    lines = {
        "redis": ["redis-server", str(state.redis_dir / "redis.conf")],
        "sentinel": ["redis-server", str(state.sentinel_dir / "sentinel.conf"), "--sentinel"],
        "manager": [*swarmpy, "manager", "--no-lb", *on_node, *at],
        # with no manager on the host, the load balancer's figures go to the leader's /metrics
        "lb": [*swarmpy, "lb", *on_node, *([] if "manager" in names else ["--push-metrics"]), *at],
        "worker": [*swarmpy, "worker", *(["--local-node"] if local_node else []), *at],
    }
    return [Part(name, lines[name], log_file=str(state.run_dir / f"{name}.log")) for name in PARTS if name in names]


def run(state: StateDir, names: list[str], node_id: str | None = None, local_node: bool = False) -> None:
    Supervisor(state, commands(state, names, node_id, local_node), node_id).run()
