"""HTTP client of the manager API: the CLI's only way into a cluster.

Where the cluster is: `--host URL`, else `SWARMPY_HOST` (one URL, or several
separated by commas), else the API address in the local state dir followed by
the other managers the local manager last saw, else https://127.0.0.1:2378. HTTPS
is verified against the cluster's CA (`SWARMPY_CA`, else `ca.crt` in the state
dir); plain HTTP is refused but to 127.0.0.1.
When a manager does not answer, the next one is asked. The token:
`SWARMPY_TOKEN`, else the state dir's token file.
"""

from __future__ import annotations

import base64
import os
from json import loads as json_loads
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlparse

import requests
import urllib3

from swarmpy.settings import DEFAULT_API_PORT, StateDir


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ClientError(Exception):
    """The manager refused a request (or could not be reached)."""

    def __init__(self, message: str, status: int | None = None, path: str | None = None,
                 problems: list[dict] | None = None):
        super().__init__(message)
        self.status, self.path, self.problems = status, path, problems or []


def _never_connected(error: requests.ConnectionError) -> bool:
    """The connection was refused or timed out: the request never reached a manager."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _frames(response: requests.Response) -> Iterator[dict]:
    """A streamed answer's frames, one JSON object a line, without the beats of silent spells."""
    with response:
        for line in response.iter_lines():
            if line and (frame := json_loads(line)) != {"beat": 1}:
                yield frame


def _deploy_body(stack: dict, objects: dict | None, prune: bool) -> dict:
    return {"stack": stack, "objects": objects or {}, "prune": prune}


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 60, others: list[str] = (),
                 ca: str | None = None):
        self.url = url.rstrip("/")
        self.others = [u.rstrip("/") for u in others if u.rstrip("/") != self.url]  # tried when `url` is away
        self.candidates = [self.url, *self.others]
        for candidate in self.candidates:
            parsed = urlparse(candidate)
            if parsed.scheme != "https" and parsed.hostname not in LOOPBACK:
                raise ClientError(f"{candidate}: the API is reached over HTTPS (plain HTTP only on 127.0.0.1)")
        self.session = requests.Session()
        self.session.verify = ca or True  # the cluster's own CA, else the system's
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace that CA (and a proxy intervene)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._side: requests.Session | None = None  # exec input's, beside a streamed answer

    @classmethod
    def from_env(cls, host: str | None = None, state_dir: str | None = None) -> "Client":
        state = StateDir(state_dir)
        urls = [u.strip() for u in (host or os.environ.get("SWARMPY_HOST") or "").split(",") if u.strip()]
        if not urls and state.exists():
            urls = [state.load().api_url, *state.known_managers()]
        urls = [u if "://" in u else f"https://{u}" for u in urls or [f"https://127.0.0.1:{DEFAULT_API_PORT}"]]
        ca = os.environ.get("SWARMPY_CA") or (str(state.ca_file) if state.ca_file.exists() else None)
        return cls(urls[0], os.environ.get("SWARMPY_TOKEN") or state.token(), others=urls[1:], ca=ca)

    # ---------------------------------------------------------------- transport

    def request(self, method: str, path: str, json: Any = None, params: dict | None = None,
                timeout: float | None = None, stream: bool = False,
                session: requests.Session | None = None) -> requests.Response:
        try:
            response = self._send(method, path, json, params, timeout, stream, session or self.session)
        except requests.exceptions.SSLError as e:
            raise ClientError(f"{self.url}: the manager's certificate is not one the cluster's CA signed "
                              "(SWARMPY_CA, or ca.crt in the state dir): refusing to talk to it") from e
        except requests.ConnectionError as e:
            tried = ", ".join(self.candidates)
            raise ClientError(f"cannot reach the swarmpy manager at {tried}: is a cluster running "
                              "(`swarmpy init`), or is --host/SWARMPY_HOST right?") from e
        except requests.Timeout as e:
            raise ClientError(f"the swarmpy manager at {self.url} did not answer in time") from e
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": response.text.strip() or response.reason}
            raise ClientError(body.get("error") or response.reason, response.status_code, body.get("path"),
                              body.get("problems"))
        return response

    def _send(self, method, path, json, params, timeout, stream, session) -> requests.Response:
        """The request to the manager in use; when it cannot be reached, to the next (and that one
        is used from then on). A request that reached a manager is never sent twice."""
        while True:
            try:
                return session.request(method, self.url + path, json=json, params=params,
                                       timeout=(min(5.0, timeout or self.timeout), timeout or self.timeout),
                                       stream=stream)
            except requests.ConnectionError as e:
                if not self.others or not _never_connected(e):
                    raise
                self.url = self.others.pop(0)

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, timeout=timeout).json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body).json()

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str, **params) -> Any:
        return self.request("DELETE", path, params={k: v for k, v in params.items() if v is not None}).json()

    # ---------------------------------------------------------------- cluster

    def info(self) -> dict:
        return self.get("/info")

    def events(self, since: str | None = None, block_ms: int = 0, types: list[str] = (),
               names: list[str] = ()) -> dict:
        """Events after `since` (an event id; None: from now), only of `types` and about `names`
        when given; waits up to `block_ms` for one."""
        return self.get("/events", since=since, block=block_ms, type=",".join(types) or None,
                        name=",".join(names) or None)

    # ---------------------------------------------------------------- nodes

    def nodes(self) -> list[dict]:
        return self.get("/nodes")

    def node(self, ref: str) -> dict:
        return self.get(f"/nodes/{quote(ref, safe='')}")

    def add_node(self, name: str, host: str, port: int = 22, user: str = "root", identity: str | None = None,
                 labels: dict | None = None, accept_host_key: bool = False, host_key: str | None = None) -> dict:
        body = {"name": name, "ssh": {"host": host, "port": port, "user": user}, "labels": labels or {},
                "identity": identity, "accept_host_key": accept_host_key, "host_key": host_key}
        return self.post("/nodes", body, timeout=90)

    def update_node(self, ref: str, **changes) -> dict:
        return self.patch(f"/nodes/{quote(ref, safe='')}", {k: v for k, v in changes.items() if v is not None})

    def remove_node(self, ref: str, force: bool = False) -> dict:
        return self.delete(f"/nodes/{quote(ref, safe='')}", force="1" if force else None)

    def promote(self, ref: str) -> dict:
        return self.post(f"/nodes/{quote(ref, safe='')}/promote", timeout=120)

    def demote(self, ref: str) -> dict:
        return self.post(f"/nodes/{quote(ref, safe='')}/demote", timeout=120)

    def tasks(self, node: str | None = None, stack: str | None = None) -> list[dict]:
        return self.get("/tasks", node=node, stack=stack)

    # ---------------------------------------------------------------- stacks and services

    def stacks(self) -> list[dict]:
        return self.get("/stacks")

    def deploy(self, name: str, stack: dict, objects: dict | None = None, prune: bool = False) -> dict:
        return self.put(f"/stacks/{quote(name, safe='')}", _deploy_body(stack, objects, prune))

    def plan(self, name: str, stack: dict, objects: dict | None = None, prune: bool = False) -> dict:
        """What `deploy` with the same arguments would change; nothing is."""
        return self.post(f"/stacks/{quote(name, safe='')}/plan", _deploy_body(stack, objects, prune))

    def remove_stack(self, name: str) -> dict:
        return self.delete(f"/stacks/{quote(name, safe='')}")

    def stack_services(self, name: str) -> list[dict]:
        return self.get(f"/stacks/{quote(name, safe='')}/services")

    def stack_tasks(self, name: str) -> list[dict]:
        return self.get(f"/stacks/{quote(name, safe='')}/tasks")

    def services(self, stack: str | None = None) -> list[dict]:
        return self.get("/services", stack=stack)

    def service(self, ref: str) -> dict:
        return self.get(f"/services/{quote(ref, safe='')}")

    def service_tasks(self, ref: str) -> list[dict]:
        return self.get(f"/services/{quote(ref, safe='')}/tasks")

    def scale(self, ref: str, replicas: int) -> dict:
        return self.patch(f"/services/{quote(ref, safe='')}", {"replicas": replicas})

    def create_service(self, spec: dict) -> dict:
        return self.post("/services", {"spec": spec})

    def update_service(self, ref: str, spec: dict, version: int | None = None, force: bool = False) -> dict:
        return self.post(f"/services/{quote(ref, safe='')}/update", {"spec": spec, "version": version, "force": force})

    def rollback_service(self, ref: str) -> dict:
        return self.post(f"/services/{quote(ref, safe='')}/rollback")

    def remove_service(self, ref: str) -> dict:
        return self.delete(f"/services/{quote(ref, safe='')}")

    def logs(self, ref: str, follow: bool = False, tail: str = "all", timestamps: bool = False) -> Iterator[str]:
        params = {"follow": "1" if follow else "0", "tail": tail, "timestamps": "1" if timestamps else "0"}
        response = self.request("GET", f"/services/{quote(ref, safe='')}/logs", params=params,
                                timeout=None if follow else self.timeout, stream=True)
        for frame in _frames(response):
            yield frame["line"]

    def exec_start(self, ref: str, cmd: list[str], slot: int | None = None, tty: bool = False,
                   stdin: bool = False, size: tuple[int, int] | None = None) -> dict:
        """Open an exec in a running task of the service: {id, task, node, container_id}."""
        width, height = size or (None, None)
        return self.post(f"/services/{quote(ref, safe='')}/exec", {"cmd": list(cmd), "slot": slot, "tty": tty,
                                                                    "stdin": stdin, "width": width, "height": height})

    def exec_output(self, exec_id: str) -> Iterator[dict]:
        """The exec's frames as they come ({out|err: base64}; the last {exit: code} or {error: why})."""
        response = self.request("GET", f"/exec/{quote(exec_id, safe='')}", timeout=None, stream=True)
        yield from _frames(response)

    def exec_input(self, exec_id: str, data: bytes = b"", eof: bool = False,
                   size: tuple[int, int] | None = None) -> None:
        """Stdin for the exec, its end, or a terminal's new size. Safe beside `exec_output` in
        another thread: it has a session of its own."""
        if self._side is None:
            self._side = requests.Session()
            self._side.verify, self._side.trust_env = self.session.verify, False
            self._side.headers.update(self.session.headers)
        width, height = size or (None, None)
        body = {"data": base64.b64encode(data).decode(), "eof": eof, "width": width, "height": height}
        self.request("POST", f"/exec/{quote(exec_id, safe='')}/input", json=body, session=self._side)

    # ---------------------------------------------------------------- secrets and configs

    def objects(self, kind: str) -> list[dict]:
        return self.get(f"/{kind}s")

    def object(self, kind: str, name: str) -> dict:
        return self.get(f"/{kind}s/{quote(name, safe='')}")

    def create_object(self, kind: str, name: str, data_b64: str, labels: dict | None = None) -> dict:
        return self.post(f"/{kind}s", {"name": name, "data": data_b64, "labels": labels or {}})

    def remove_object(self, kind: str, name: str) -> dict:
        return self.delete(f"/{kind}s/{quote(name, safe='')}")

    # ---------------------------------------------------------------- networks

    def networks(self) -> list[dict]:
        return self.get("/networks")

    def network(self, ref: str) -> dict:
        return self.get(f"/networks/{quote(ref, safe='')}")

    def create_network(self, name: str, subnet: str | None = None, attachable: bool = False,
                       internal: bool = False, labels: dict | None = None, mtu: int | None = None) -> dict:
        body = {"name": name, "subnet": subnet, "attachable": attachable, "internal": internal,
                "labels": labels or {}, "mtu": mtu}
        return self.post("/networks", {k: v for k, v in body.items() if v is not None})

    def remove_network(self, ref: str) -> dict:
        return self.delete(f"/networks/{quote(ref, safe='')}")

    # ---------------------------------------------------------------- load balancers

    def create_token(self, stack: str | None, allow_privileged: bool = False, metrics: bool = False) -> dict:
        if metrics:
            return self.post("/tokens", {"metrics": True})
        return self.post("/tokens", {"stack": stack, "allow_privileged": allow_privileged})

    def tokens(self) -> list[dict]:
        return self.get("/tokens")

    def remove_token(self, token_id: str) -> dict:
        return self.delete(f"/tokens/{quote(token_id, safe='')}")

    def update_cluster(self, **settings) -> dict:
        return self.patch("/cluster", settings)

    def lb_status(self) -> dict:
        return self.get("/lb")
