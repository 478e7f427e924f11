"""A fault of the manager itself reaches the client as JSON with a request id, and the log has the
traceback under the same id (the store here is a Redis that does not answer: a real fault)."""

from __future__ import annotations

import logging

from swarmpy.manager.api import create_app
from swarmpy.manager.context import ManagerContext
from swarmpy.settings import ClusterConfig
from swarmpy.store import Store


def test_an_unexpected_fault_is_a_json_500_with_the_request_id_in_the_log(caplog):
    store = Store.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nothing listens on port 1
    ctx = ManagerContext(store=store, vault=None, queues=None, token="t", manager_id="m",
                         config=ClusterConfig(redis_url="redis://127.0.0.1:1/0", api_url="http://127.0.0.1:1"),
                         state=None)
    client = create_app(ctx).test_client()
    with caplog.at_level(logging.ERROR, logger="swarmpy.manager.api"):
        r = client.get("/nodes", headers={"Authorization": "Bearer t"})
    assert r.status_code == 500 and r.is_json
    request_id = r.get_json()["request_id"]
    assert request_id in r.get_json()["error"] and "Traceback" not in r.get_data(as_text=True)
    assert any(request_id in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_unknown_routes_and_methods_answer_json():
    ctx = ManagerContext(store=None, vault=None, queues=None, token="t", manager_id="m",
                         config=ClusterConfig(redis_url="redis://127.0.0.1:1/0", api_url="http://127.0.0.1:1"),
                         state=None)
    client = create_app(ctx).test_client()
    auth = {"Authorization": "Bearer t"}
    r = client.get("/nope", headers=auth)
    assert r.status_code == 404 and "no such endpoint" in r.get_json()["error"]
    r = client.put("/nodes", headers=auth)
    assert r.status_code == 405 and r.is_json
