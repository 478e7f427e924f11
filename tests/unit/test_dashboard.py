"""The dashboard's blueprint with no cluster behind it: login, session cookie, CSRF, the pages
rendered from canned API answers (the lab's browser test drives a real cluster)."""

from __future__ import annotations

import re

import pytest
from flask import g, jsonify
from werkzeug.exceptions import Forbidden

from swarmpy.manager import ui
from swarmpy.manager.access import Caller
from swarmpy.manager.ui import board, session
from swarmpy.store import Store
from tests.unit.manager_app import TOKEN, offline_app

HTTPS = "https://localhost"
NODES = [
    {"id": "n1", "hostname": "node1", "role": "worker", "manager_status": "", "status": "ready",
     "availability": "active", "labels": {"zone": "a"}, "cpus": 2.0, "memory": 2 << 30,
     "reserved_cpus": 0.5, "reserved_memory": 256 << 20},
    {"id": "n2", "hostname": "node2", "role": "manager", "manager_status": "Leader", "status": "ready",
     "availability": "drain", "labels": {}, "cpus": 4.0, "memory": 4 << 30, "reserved_cpus": 0.0,
     "reserved_memory": 0},
]


def task(i: int, node: str, state: str = "running", health: str | None = None) -> dict:
    return {"id": f"t{i}", "service_id": "s1", "service_name": "web_app", "slot": i, "image": "nginx:1.27",
            "state": state, "desired_state": "running", "health": health, "node_id": node}


@pytest.fixture
def app(monkeypatch):
    nodes = [dict(NODES[0], tasks=[task(1, "n1"), task(2, "n1", "starting", "starting")]), dict(NODES[1], tasks=[])]
    services = [{"id": "s1", "name": "web_app", "stack": "web", "mode": "replicated", "replicas": "1/2",
                 "running": 1, "desired": 2, "image": "nginx:1.27", "ports": "*:8080->80/tcp",
                 "update_status": {"state": "updating"}}]
    monkeypatch.setattr(board, "grid", lambda store: {"nodes": nodes})
    monkeypatch.setattr(board, "stacks", lambda store: {"stacks": [("web", services)]})
    return offline_app()


def logged_in(app):
    client = app.test_client()
    answer = client.post("/ui/login", data={"token": TOKEN}, base_url=HTTPS)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/ui/")
    page = client.get("/ui/", base_url=HTTPS)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client, csrf


def test_the_login_page_renders_and_refuses_a_wrong_token(app):
    client = app.test_client()
    page = client.get("/ui/login", base_url=HTTPS)
    assert page.status_code == 200 and 'name="token"' in page.get_data(as_text=True)
    wrong = client.post("/ui/login", data={"token": "not-it"}, base_url=HTTPS)
    assert wrong.status_code == 401 and "not the cluster" in wrong.get_data(as_text=True)
    assert "Set-Cookie" not in wrong.headers
    assert client.get("/ui/", base_url=HTTPS).status_code == 302  # to the login page
    assert client.get("/ui/board", base_url=HTTPS).status_code == 401


def test_a_stack_token_is_refused(app, monkeypatch):
    monkeypatch.setattr(ui.access, "identify", lambda store, cluster, presented: Caller(stack="ci", token_id="x"))
    answer = app.test_client().post("/ui/login", data={"token": "swpt_x"}, base_url=HTTPS)
    assert answer.status_code == 403 and "Set-Cookie" not in answer.headers
    assert app.test_client().get("/ui/board", headers={"Authorization": "Bearer swpt_x"}).status_code == 403


def test_the_session_cookie_is_secure_httponly_strict_and_signed(app):
    answer = app.test_client().post("/ui/login", data={"token": TOKEN}, base_url=HTTPS)
    cookie = answer.headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/ui/"):
        assert attribute in cookie
    forged = app.test_client()
    forged.set_cookie(session.COOKIE, "e30.forged.sig", domain="localhost", path="/ui/")
    assert forged.get("/ui/board", base_url=HTTPS).status_code == 401


def test_the_board_shows_every_node_and_its_task_cards(app):
    client, _ = logged_in(app)
    page = client.get("/ui/", base_url=HTTPS)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'data-node="node1"' in html and 'data-node="node2"' in html
    assert html.count('data-task="') == 2 and "state-starting" in html and "health-starting" in html
    assert "0.5 of 2 reserved" in html and "256.0 MiB of 2.0 GiB reserved" in html
    assert "1/2" in html and "updating" in html and "zone=a" in html
    fragment = client.get("/ui/board", base_url=HTTPS).get_data(as_text=True)
    assert "<html" not in fragment and fragment.count('data-task="') == 2


def test_actions_need_the_csrf_token_and_go_to_the_api_routes(app, monkeypatch):
    calls = []

    def call(store, method, path, body=None, **query):
        calls.append((method, path, body))
        return jsonify(ok=True)
    monkeypatch.setattr(board, "call", call)
    monkeypatch.setattr(Store, "wait_replicated", lambda self, timeout, replicas=None: True)  # a change waits for a replica
    client, csrf = logged_in(app)
    refused = client.post("/ui/services/web_app/scale", json={"replicas": 3}, base_url=HTTPS)
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["error"]
    wrong = client.post("/ui/services/web_app/scale", json={"replicas": 3}, base_url=HTTPS,
                        headers={session.CSRF_HEADER: csrf + "x"})
    assert wrong.status_code == 403 and not calls
    done = client.post("/ui/services/web_app/scale", json={"replicas": 3}, base_url=HTTPS,
                       headers={session.CSRF_HEADER: csrf})
    assert done.status_code == 200
    client.post("/ui/nodes/node1/availability", json={"availability": "drain"}, base_url=HTTPS,
                headers={session.CSRF_HEADER: csrf})
    assert calls == [("PATCH", "/services/web_app", {"replicas": 3}),
                     ("PATCH", "/nodes/node1", {"availability": "drain"})]


def test_a_call_runs_the_api_route_under_the_api_access_rules():
    app = offline_app()
    with app.test_request_context("/ui/"):
        g.caller = Caller()
        assert board.call(None, "GET", "/openapi.json").get_json()["openapi"].startswith("3.1")
        g.caller = Caller(stack="ci", token_id="x")
        with pytest.raises(Forbidden):
            board.call(None, "GET", "/nodes")


def test_the_event_streams_are_bounded(app, monkeypatch):
    monkeypatch.setattr(ui, "MAX_STREAMS", 1)
    app = offline_app()  # made again: the bound is read when the blueprint is made
    monkeypatch.setattr(ui, "_stream", lambda store, since: iter(["retry: 1\n\n"]))
    client, _ = logged_in(app)
    headers = {"Last-Event-ID": "1-0"}  # where to start: no store asked
    first = client.get("/ui/events", base_url=HTTPS, headers=headers, buffered=False)
    assert first.status_code == 200 and first.mimetype == "text/event-stream"
    assert client.get("/ui/events", base_url=HTTPS, headers=headers).status_code == 503
    first.close()  # the stream ends: its place is free again
    again = client.get("/ui/events", base_url=HTTPS, headers=headers)
    assert again.status_code == 200
