"""The API described in OpenAPI 3.1, served at `/openapi.json`.

Each operation is listed here once, with the body type the API checks it
against (`swarmpy.model.bodies`): the schemas of the bodies are made from the
same dataclasses the manager validates with, so the description cannot drift
from what is accepted. A test checks that every route of the app is here and
every operation here is a route; a fuzz run (schemathesis) sends what this
document allows, and worse, and expects no server error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from swarmpy import __version__
from swarmpy.model import bodies


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict
    where: str = "query"
    description: str = ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type | None = None
    params: tuple[Param, ...] = ()
    created: bool = False  # 201 rather than 200
    public: bool = False  # no token needed
    content: str = "application/json"  # of the answer
    tags: tuple[str, ...] = field(default=())


def _flag(name: str, description: str) -> Param:
    return Param(name, {"type": "string", "enum": ["0", "1", "true", "false"]}, description=description)


def _path(name: str) -> Param:
    return Param(name, {"type": "string", "minLength": 1}, where="path")


REF = (_path("ref"),)
NAME = (_path("name"),)

OPERATIONS = (
    Operation("get", "/health", "This manager's parts and whether it reaches the store", public=True,
              tags=("cluster",)),
    Operation("get", "/openapi.json", "This description", public=True, tags=("cluster",)),
    Operation("get", "/info", "The cluster: id, version, leader, managers", tags=("cluster",)),
    Operation("patch", "/cluster", "Change the cluster's settings", body=bodies.ClusterUpdate, tags=("cluster",)),
    Operation("get", "/events", "Events after an id, waiting up to `block` ms for one", params=(
        Param("since", {"type": "string"}, description="an event id as /events gives them"),
        Param("block", {"type": "integer", "minimum": 0, "maximum": 30000}),
        Param("type", {"type": "string"}, description="only these kinds, comma-separated: node, service, task, "
                                                      "network, stack, secret, config, container"),
        Param("name", {"type": "string"}, description="only events about these names, comma-separated (a "
                                                      "service's name matches its tasks' events too)")),
              tags=("cluster",)),
    Operation("get", "/nodes", "List nodes", tags=("nodes",)),
    Operation("post", "/nodes", "Add a node reached over SSH", body=bodies.NodeAdd, created=True, tags=("nodes",)),
    Operation("get", "/nodes/{ref}", "Inspect a node (id, id prefix or hostname)", params=REF, tags=("nodes",)),
    Operation("patch", "/nodes/{ref}", "Change a node's availability, labels or load balancer", params=REF,
              body=bodies.NodeUpdate, tags=("nodes",)),
    Operation("delete", "/nodes/{ref}", "Remove a node", params=REF + (_flag("force", "even when down"),),
              tags=("nodes",)),
    Operation("post", "/nodes/{ref}/promote", "Make a node a manager", params=REF, tags=("nodes",)),
    Operation("post", "/nodes/{ref}/demote", "Make a manager a worker", params=REF, tags=("nodes",)),
    Operation("get", "/stacks", "List stacks", tags=("stacks",)),
    Operation("put", "/stacks/{name}", "Deploy or update a stack (all or nothing)", params=NAME,
              body=bodies.StackDeploy, tags=("stacks",)),
    Operation("post", "/stacks/{name}/plan", "What a deploy with this body would change (nothing is written)",
              params=NAME, body=bodies.StackDeploy, tags=("stacks",)),
    Operation("delete", "/stacks/{name}", "Remove a stack", params=NAME, tags=("stacks",)),
    Operation("get", "/stacks/{name}/services", "A stack's services", params=NAME, tags=("stacks",)),
    Operation("get", "/stacks/{name}/tasks", "A stack's tasks", params=NAME, tags=("stacks",)),
    Operation("get", "/services", "List services", params=(Param("stack", {"type": "string"}),),
              tags=("services",)),
    Operation("get", "/services/{ref}", "Inspect a service", params=REF, tags=("services",)),
    Operation("patch", "/services/{ref}", "Scale a service", params=REF, body=bodies.ServiceScale,
              tags=("services",)),
    Operation("post", "/services", "Create a service of no stack (`service create`)", body=bodies.ServiceCreate,
              created=True, tags=("services",)),
    Operation("post", "/services/{ref}/update", "Give a service a new spec, rolled out under its update_config",
              params=REF, body=bodies.ServiceUpdate, tags=("services",)),
    Operation("post", "/services/{ref}/rollback", "Roll a service back to its previous spec", params=REF,
              tags=("services",)),
    Operation("delete", "/services/{ref}", "Remove a service", params=REF, tags=("services",)),
    Operation("get", "/services/{ref}/tasks", "A service's tasks", params=REF, tags=("services",)),
    Operation("get", "/services/{ref}/logs", "A service's logs: one JSON frame a line ({line: text}, "
              "{beat: 1} when silent)", params=REF + (
        _flag("follow", "keep streaming"), _flag("timestamps", "prefix each line with its time"),
        Param("tail", {"type": "string", "pattern": "^(all|[0-9]{1,8})$"})), content="application/x-ndjson",
              tags=("services",)),
    Operation("post", "/services/{ref}/exec", "Open an exec of a command in a running task of the service",
              params=REF, body=bodies.ExecStart, created=True, tags=("services",)),
    Operation("get", "/exec/{exec_id}", "An exec's output: one JSON frame a line ({out|err: base64}, {beat: 1} "
              "when silent), the last {exit: code} or {error: why}", params=(_path("exec_id"),),
              content="application/x-ndjson", tags=("services",)),
    Operation("post", "/exec/{exec_id}/input", "Send an exec its stdin (base64), its end, or a terminal size",
              params=(_path("exec_id"),), body=bodies.ExecInput, tags=("services",)),
    Operation("get", "/tasks", "List tasks", params=(Param("node", {"type": "string"}),
                                                     Param("stack", {"type": "string"})), tags=("tasks",)),
    *(op for kind in ("secrets", "configs") for op in (
        Operation("get", f"/{kind}", f"List {kind} (names, labels, dates; never content)", tags=(kind,)),
        Operation("post", f"/{kind}", f"Create one of the {kind}", body=bodies.ObjectCreate, created=True,
                  tags=(kind,)),
        Operation("get", f"/{kind}/{{name}}", "Inspect one (by name or id)", params=NAME, tags=(kind,)),
        Operation("delete", f"/{kind}/{{name}}", "Remove one no service uses (by name or id)", params=NAME,
                  tags=(kind,)))),
    Operation("get", "/networks", "List networks", tags=("networks",)),
    Operation("post", "/networks", "Create a network", body=bodies.NetworkCreate, created=True, tags=("networks",)),
    Operation("get", "/networks/{ref}", "Inspect a network", params=REF, tags=("networks",)),
    Operation("delete", "/networks/{ref}", "Remove a network", params=REF, tags=("networks",)),
    Operation("get", "/lb", "The load balancers' tables", tags=("cluster",)),
    Operation("post", "/tokens", "Make a token limited to one stack, or to /metrics (shown once)",
              body=bodies.TokenCreate, created=True, tags=("tokens",)),
    Operation("get", "/tokens", "List stack and metrics tokens (never the tokens themselves)", tags=("tokens",)),
    Operation("delete", "/tokens/{token_id}", "Revoke a token", params=(_path("token_id"),), tags=("tokens",)),
    Operation("get", "/metrics", "This manager's figures, its load balancer's and the cluster's, for Prometheus "
              "(the cluster token or a metrics token)", tags=("cluster",), content="text/plain"),
)

ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"},
    "path": {"type": ["string", "null"], "description": "the field at fault, dotted (services.web.image)"},
    "problems": {"type": "array", "items": {"type": "object", "properties": {
        "path": {"type": "string"}, "message": {"type": "string"}}}},
    "request_id": {"type": "string", "description": "of a fault of the manager; its log has the same id"}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


@functools.cache
def document() -> dict:
    from pydantic import TypeAdapter
    typed = sorted({op.body for op in OPERATIONS if op.body}, key=lambda t: t.__name__)
    refs, defs = TypeAdapter.json_schemas([(t, "validation", TypeAdapter(t)) for t in typed],
                                          ref_template="#/components/schemas/{model}")
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        ok = "201" if op.created else "200"
        entry = {"summary": op.summary, "operationId": f"{op.method}{op.path}", "tags": list(op.tags),
                 "responses": {ok: {"description": "done",
                                    "content": {op.content: {"schema": {}}}},
                               "400": _error("a bad request: the path names the field"),
                               "403": _error("not for this token (a stack token outside its stack)"),
                               "404": _error("no such object"), "409": _error("a conflict with the cluster's state"),
                               "413": _error("a body over the size limit"),
                               "500": _error("a fault of the manager")}}
        if op.public:
            entry["security"] = []
        else:
            entry["responses"]["401"] = _error("no valid token")
        if op.params:
            entry["parameters"] = [{"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema,
                                    **({"description": p.description} if p.description else {})} for p in op.params]
        if op.body:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(op.body, "validation")]}}}
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "swarmpy manager API", "version": __version__,
                 "description": "Every body is checked as `swarmpy.model.validation` says; errors are JSON."},
        "security": [{"token": []}],
        "paths": paths,
        "components": {"schemas": {**defs.get("$defs", {}), "Error": ERROR},
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "the cluster token (state dir's `token`)"}}},
    }
