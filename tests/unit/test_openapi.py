"""The OpenAPI description is the API: every route of the app is in it, and nothing else."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from swarmpy.manager import openapi, ui
from tests.unit.manager_app import offline_app


def routes() -> set[tuple[str, str]]:
    found = set()
    for rule in offline_app().url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith(f"{ui.NAME}."):
            continue  # the dashboard's pages are no part of the JSON API
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        expanded = [path]
        if m := re.search(r"<any\(([^)]*)\):\w+>", rule.rule):  # /<any(secrets, configs):plural> -> both
            expanded = [re.sub(r"<any\([^)]*\):\w+>", choice.strip(), path) for choice in m.group(1).split(",")]
            expanded = [re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", p) for p in expanded]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found |= {(method.lower(), p) for p in expanded}
    return found


def test_every_route_is_described_and_every_description_is_a_route():
    described = {(method, path) for path, ops in openapi.document()["paths"].items() for method in ops}
    assert routes() == described


def test_the_document_is_valid_openapi_3_1():
    validate(openapi.document())


def test_every_body_is_described_with_the_types_the_manager_checks():
    doc = openapi.document()
    deploy = doc["paths"]["/stacks/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert deploy == {"$ref": "#/components/schemas/StackDeploy"}
    port = doc["components"]["schemas"]["Port"]
    assert port["properties"]["target"]["type"] == "integer" and port["additionalProperties"] is False
