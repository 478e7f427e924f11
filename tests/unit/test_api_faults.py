"""A fault of the manager itself reaches the client as JSON with a request id, and the log has the
traceback under the same id (the store here is a Redis that does not answer: a real fault)."""

from __future__ import annotations

import logging

from tests.unit.manager_app import TOKEN, offline_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_an_unexpected_fault_is_a_json_500_with_the_request_id_in_the_log(caplog):
    client = offline_app().test_client()
    with caplog.at_level(logging.ERROR, logger="swarmpy.manager.api"):
        r = client.get("/nodes", headers=AUTH)
    assert r.status_code == 500 and r.is_json
    request_id = r.get_json()["request_id"]
    assert request_id in r.get_json()["error"] and "Traceback" not in r.get_data(as_text=True)
    assert any(request_id in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_unknown_routes_and_methods_answer_json():
    client = offline_app().test_client()
    r = client.get("/nope", headers=AUTH)
    assert r.status_code == 404 and "no such endpoint" in r.get_json()["error"]
    r = client.put("/nodes", headers=AUTH)
    assert r.status_code == 405 and r.is_json
