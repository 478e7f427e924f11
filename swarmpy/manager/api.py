"""The manager's REST API (Flask app factory). The CLI's only way into a cluster.

Every request carries the cluster token (`Authorization: Bearer ...`), or gets
401. Every body is checked by `swarmpy.model.validation`, the same checks the
CLI runs: a bad one gets 400 with a JSON error naming the field, and nothing
is written. Unknown objects get 404; a stale version 409; a body over
MAX_BODY 413. Errors are always JSON, `{"error": ..., "path": ...}`; a fault
of the manager itself is a JSON 500 with a request id, logged with the same id.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, Response, g, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException

from swarmpy import __version__
from swarmpy.manager import events as cluster_events
from swarmpy.manager import nodes as node_ops
from swarmpy.manager import access, execs, metrics, networks, objects, openapi, services, stacks, views
from swarmpy.manager.context import ManagerContext
from swarmpy.manager.ui import NAME as DASHBOARD, blueprint as dashboard
from swarmpy.model import Availability, Service, has_healthcheck, takes_traffic
from swarmpy.model import bodies, validation
from swarmpy.model.validation import Invalid
from swarmpy.network import names as network_names
from swarmpy.store import Conflict, NotFound, PlanFacts, replication

log = logging.getLogger(__name__)

REPLICATION_WAIT = 2.0  # seconds a change may wait for a replica of the store to confirm it
MAX_BODY = 8 * 1024 * 1024  # a stack of a thousand services is well under 2 MiB
DRAIN_LIMIT = 64 * 1024 * 1024  # a larger body gets its 413 without being read
DEFAULT_MAX_REPLICAS = 10_000  # per service, unless `cluster update --max-replicas` says otherwise
TOO_LARGE = f"the body is too large: at most {MAX_BODY // (1024 * 1024)} MiB"
# POST routes that change nothing the cluster keeps: no replica need confirm them
WRITES_NOTHING = {"plan_stack", "exec_in_service", "exec_input"}  # an exec's relay is no state to keep
EVENT_ID = re.compile(r"(\d{1,20})(-\d{1,20})?\Z")  # a Redis stream id, as /events gives them


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 400, **extra):
        super().__init__(message)
        self.field, self.status, self.extra = field, status, extra


def _parse(kind: type, strip: str | None = None):
    """The request's body as `kind`, checked (types, unknown keys, JSON nesting)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise Invalid([("(body)", "the body must be a JSON object")])
    return validation.parse(kind, raw, strip)


def _flag(name: str) -> bool:
    return request.args.get(name, "") in ("1", "true")


def _number(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {text[:40]!r}", field=name)
    return int(text)


def max_replicas(cluster: dict) -> int:
    """The cluster's replica cap, from its settings (`store.cluster_info()`)."""
    return int(cluster.get("max_replicas") or DEFAULT_MAX_REPLICAS)


def allows_privileged(cluster: dict) -> bool:
    return cluster.get("allow_privileged") == "1"


def reserved_ports(ctx: ManagerContext) -> dict[tuple[int, str], str]:
    """Ports the cluster itself listens on, which no service may publish."""
    ports = {(ctx.config.api_port, "tcp"): "the managers' API", (network_names.VXLAN_PORT, "udp"): "VXLAN"}
    if ctx.config.sentinels:
        ports[(replication.address(ctx.config.sentinels[0])[1], "tcp")] = "Redis Sentinel"
    ports[(replication.redis_port(ctx.config), "tcp")] = "the store (Redis)"
    return ports


def cluster_limits(ctx: ManagerContext, caller: access.Caller, cluster: dict[str, str] | None = None) -> dict:
    """What the cluster allows a service, as `validation` takes it: read once per call (or given)."""
    cluster = ctx.store.cluster_info() if cluster is None else cluster
    return {"max_replicas": max_replicas(cluster), "reserved_ports": reserved_ports(ctx),
            "allow_privileged": allows_privileged(cluster) or caller.allow_privileged}


def create_app(ctx: ManagerContext) -> Flask:
    app = Flask("swarmpy.manager")
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    store = ctx.store
    app.register_blueprint(metrics.blueprint(ctx))  # first: its hooks count every request, refused ones too

    @app.before_request
    def refuse_large_bodies():
        """A body over the limit is read to its end before the 413 (up to a bound): a client still
        sending would otherwise meet a closed connection instead of the answer."""
        length = request.content_length or 0
        if length > MAX_BODY:
            if length <= DRAIN_LIMIT:
                stream = request.environ["wsgi.input"]
                while length > 0 and (chunk := stream.read(min(length, 1 << 16))):
                    length -= len(chunk)
            return jsonify(error=TOO_LARGE), 413
        return None

    @app.before_request
    def authenticate():
        if request.path in ("/health", "/openapi.json"):
            return None
        if request.blueprint == DASHBOARD:  # the dashboard: a login page and session cookie of its own
            return None
        header = request.headers.get("Authorization", "")
        g.caller = access.identify(store, ctx.token, header[7:] if header.startswith("Bearer ") else "")
        if g.caller is None:
            return jsonify(error="unauthorized: a valid cluster token is required "
                                 "(Authorization: Bearer <token>)"), 401
        if request.url_rule is not None:
            refused = access.refusal(g.caller, store, request.method, request.url_rule.rule,
                                     request.view_args or {}, request.args)
            if refused:
                return jsonify(error=f"forbidden: {refused}"), 403
        return None

    @app.after_request
    def replicated(response):
        """A change is acknowledged once a replica of the store has it too: a failover to that
        replica loses nothing the API said was done."""
        if (request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 300
                and request.endpoint not in WRITES_NOTHING):
            try:
                confirmed = store.wait_replicated(REPLICATION_WAIT, g.get("replicas"))
            except Exception:  # noqa: BLE001 - the store went away after the change
                confirmed = False
            if not confirmed:
                log.warning("api: %s %s: no replica confirmed the change within %.0f s", request.method,
                            request.path, REPLICATION_WAIT)
                refused = jsonify(error="the change is made on the store's master, but no replica confirmed it "
                                        f"within {REPLICATION_WAIT:.0f} s: it may be lost if the master fails now")
                refused.status_code = 503
                return refused
        return response

    @app.errorhandler(BadRequest)
    def bad_request(e: BadRequest):
        return jsonify(error=str(e), path=e.field, **e.extra), e.status

    @app.errorhandler(Invalid)
    def invalid(e: Invalid):
        return jsonify(error=str(e), path=e.path,
                       problems=[{"path": p, "message": m} for p, m in e.problems]), e.status

    @app.errorhandler(NotFound)
    def not_found(e):
        return jsonify(error=str(e)), 404

    @app.errorhandler(Conflict)
    def conflict(e):
        return jsonify(error=str(e)), 409

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        messages = {404: f"no such endpoint: {request.method} {request.path}",
                    405: f"method {request.method} not allowed on {request.path}",
                    413: TOO_LARGE}
        return jsonify(error=messages.get(e.code, e.description)), e.code

    @app.errorhandler(Exception)
    def fault(e: Exception):
        """A fault of the manager: the client gets an id to quote, the log the traceback with it."""
        request_id = uuid.uuid4().hex[:12]
        log.error("api: request %s: %s %s failed", request_id, request.method, request.path, exc_info=e)
        return jsonify(error=f"internal error of the manager (request id {request_id}: see its log)",
                       request_id=request_id), 500

    @app.get("/health")
    def health():
        """This manager answers; with it, what each part its supervisor runs here is doing (read
        from this machine, so that it holds while the store does not answer)."""
        status = ctx.state.read_parts() if ctx.state else None
        parts = status["parts"] if status else {"manager": {"state": "running", "pid": os.getpid()}}
        try:
            store.ping()
            reached = True
        except Exception:  # noqa: BLE001 - any fault of the store is an answer here
            reached = False
        ok = reached and all(p["state"] == "running" for p in parts.values())
        return jsonify(ok=ok, manager_id=ctx.manager_id, store=reached, parts=parts), 200 if ok else 503

    # ---------------------------------------------------------------- cluster

    @app.get("/info")
    def info():
        cluster = store.cluster_info()
        return jsonify(version=__version__, cluster_id=cluster.get("id"), manager_id=ctx.manager_id,
                       leader=store.lease_holder("leader"), managers=store.alive("manager"),
                       heartbeat=float(cluster.get("heartbeat", 5)), nodes=len(store.list_nodes()))

    @app.get("/openapi.json")
    def openapi_document():
        return jsonify(openapi.document())

    @app.patch("/cluster")
    def update_cluster():
        b = _parse(bodies.ClusterUpdate)
        if b.max_replicas is not None:
            if not 1 <= b.max_replicas <= 1_000_000:
                raise BadRequest("max_replicas must be from 1 to 1000000", field="max_replicas")
            store.set_cluster_info(max_replicas=b.max_replicas)
        if b.allow_privileged is not None:
            store.set_cluster_info(allow_privileged="1" if b.allow_privileged else "0")
        cluster = store.cluster_info()
        return jsonify(max_replicas=max_replicas(cluster), allow_privileged=allows_privileged(cluster))

    # ---------------------------------------------------------------- tokens

    @app.post("/tokens")
    def create_token():
        b = _parse(bodies.TokenCreate)
        if b.metrics and (b.stack is not None or b.allow_privileged):
            raise BadRequest("a metrics token is for no stack: give metrics or stack, not both", field="metrics")
        if not b.metrics:
            validation.check_name("stack", b.stack or "", "stack")
        token, record = access.create(store, None if b.metrics else b.stack, b.allow_privileged)
        return jsonify(token=token, **record), 201

    @app.get("/tokens")
    def list_tokens():
        return jsonify([access.public(t) for t in store.list_tokens()])

    @app.delete("/tokens/<token_id>")
    def remove_token(token_id):
        if not store.delete_token(token_id):
            raise NotFound(f"token {token_id} not found")
        return jsonify(removed=token_id)

    @app.get("/events")
    def events():
        since = request.args.get("since") or store.last_event_id()
        if since != "0" and not EVENT_ID.match(since):
            raise BadRequest(f"since must be an event id as /events gives them (like 1718000000000-0), "
                             f"not {since[:40]!r}", field="since")
        block = _number("block", 0, 0, 30_000)
        try:
            wanted = cluster_events.EventFilter.parse(request.args.get("type", ""), request.args.get("name", ""))
        except ValueError as e:
            raise BadRequest(str(e), field="type")
        deadline = time.monotonic() + block / 1000
        while True:  # a filter may leave nothing of what came: wait on for the rest of `block`
            found = store.read_events(since, block_ms=block or None, count=1000)
            since = found[-1][0] if found else since
            shown = [e for e in cluster_events.named(store, [{**e, "event_id": i} for i, e in found])
                     if wanted.matches(e)]
            block = int((deadline - time.monotonic()) * 1000)
            if shown or not found or block <= 0:
                break
        return jsonify(last=since, events=shown)

    # ---------------------------------------------------------------- nodes

    def node_listing():
        managers, leader, supervisors = store.alive("manager"), store.lease_holder("leader"), store.alive("supervisor")
        return [views.node_view(n, managers, leader, supervisors) for n in store.list_nodes()]

    @app.get("/nodes")
    def list_nodes():
        return jsonify(node_listing())

    @app.post("/nodes")
    def add_node():
        b = _parse(bodies.NodeAdd)
        validation.check_name("node", b.name)
        if not 1 <= b.ssh.port <= 65535:
            raise BadRequest("ssh.port must be between 1 and 65535", field="ssh.port")
        try:
            node = node_ops.add(ctx, b.name, b.ssh.host, b.ssh.port, b.ssh.user, b.labels, b.identity, b.host_key,
                                b.accept_host_key)
        except node_ops.NodeError as e:
            raise BadRequest(str(e), field=e.field, status=e.status)
        return jsonify(node.to_dict()), 201

    @app.get("/nodes/<ref>")
    def inspect_node(ref):
        node = store.find_node(ref)
        return jsonify(next(n for n in node_listing() if n["id"] == node.id))

    @app.patch("/nodes/<ref>")
    def update_node(ref):
        b = _parse(bodies.NodeUpdate)
        node = store.find_node(ref)
        version, availability, add, remove, lb = b.version, b.availability, b.label_add, b.label_rm, b.lb
        if any(not key or "\x00" in key for key in add):
            raise BadRequest("a label needs a name", field="label_add")
        if version is not None and version != node.version:
            raise Conflict(f"node {node.hostname} changed since version {version} (now {node.version})")

        def change(n):
            if availability is not None:
                n.availability = Availability(availability)
            n.labels = {**{k: v for k, v in n.labels.items() if k not in remove}, **add}
            if lb is not None:
                n.lb = lb
        node = store.update_node(node.id, change)
        if lb is not None:
            node_ops.set_lb(ctx, node, lb)
        return jsonify(node.to_dict())

    def node_action(action, ref, **kwargs):
        try:
            return action(ctx, store.find_node(ref), **kwargs)
        except node_ops.NodeError as e:
            raise BadRequest(str(e), field=e.field, status=e.status)

    @app.delete("/nodes/<ref>")
    def remove_node(ref):
        return jsonify(node_action(node_ops.remove, ref, force=_flag("force")))

    @app.post("/nodes/<ref>/promote")
    def promote(ref):
        return jsonify(node_action(node_ops.promote, ref).to_dict())

    @app.post("/nodes/<ref>/demote")
    def demote(ref):
        return jsonify(node_action(node_ops.demote, ref).to_dict())

    # ---------------------------------------------------------------- stacks

    @app.get("/stacks")
    def list_stacks():
        services = store.list_services()
        return jsonify([{"name": name, "services": sum(1 for s in services if s.stack == name)}
                        for name in sorted(store.list_stacks())])

    def deploy_body(name: str, cluster: dict[str, str]) -> bodies.StackDeploy:
        """The deploy's body, checked as a deploy is (a plan is refused where the deploy would be)."""
        body = _parse(bodies.StackDeploy, strip="stack")
        validation.check_stack(name, body.stack, **cluster_limits(ctx, g.caller, cluster))
        if refused := access.deploy_refusals(g.caller, name, body.stack):
            raise Invalid(refused, status=403)
        return body

    def plan_deploy(name: str, spec, prune: bool, facts: PlanFacts):
        """(the new networks, the plan) from what the store holds now: nothing written."""
        try:
            joined = networks.plan_stack_networks(facts, name, spec)
        except networks.NetworkError as e:
            raise BadRequest(str(e), field=e.field, status=e.status)
        plan = stacks.plan_stack(name, spec, facts.services, facts.published, prune,
                                 networks=joined.by_service, stored=facts.stack)
        if clashes := stacks.name_clashes(plan, store.service_id_by_name):
            raise stacks.StackError(clashes, status=409)
        return joined, plan

    @app.post("/stacks/<name>/plan")
    def plan_stack(name):
        """What `PUT /stacks/<name>` would change with this body; nothing is written."""
        facts = store.plan_facts(name)
        body = deploy_body(name, facts.cluster)
        _, plan = plan_deploy(name, body.stack, body.prune, facts)
        new_objects = objects.prepare_stack_objects(ctx, name, body.stack, body.objects)
        tasks = store.tasks_of_services([s.id for s in facts.services])
        return jsonify(stacks.describe_plan(plan, body.stack, facts.services, tasks, facts.stack, new_objects))

    @app.put("/stacks/<name>")
    def deploy_stack(name):
        """All or nothing: a refused deploy writes nothing, its secrets and configs included."""
        raw = request.get_data(cache=True)
        facts = store.plan_facts(name)
        body = deploy_body(name, facts.cluster)
        for attempt in range(3):  # a deploy is declarative: if the cluster moved meanwhile, plan it again
            if attempt:
                spec, facts = validation.parse(bodies.StackDeploy, raw).stack, store.plan_facts(name)
            else:
                spec = body.stack  # planning fills in ports: a new attempt starts from the body again
            joined, plan = plan_deploy(name, spec, body.prune, facts)
            new_objects = objects.prepare_stack_objects(ctx, name, spec, body.objects)
            objects.write_all(ctx, new_objects)
            try:
                g.replicas = store.write_stack(plan.record, plan.changed, plan.removed, plan.expected, joined.new,
                                               facts.stack_raw)
                break
            except BaseException as e:
                objects.undo(ctx, new_objects)
                if not isinstance(e, Conflict) or attempt == 2:
                    raise
        # most redeploys keep each service's networks and endpoint mode, and so its virtual IPs
        before = {s.id: networks.vip_shape(s) for s in facts.services}
        networks.ensure_vips(store, [s for s in plan.changed if before.get(s.id) != networks.vip_shape(s)])
        in_file = {stacks.full_name(name, key) for key in spec.services}
        return jsonify(services=[{"id": s.id, "name": s.name, "version": s.version, "changed": True, "in_file": True}
                                 for s in plan.changed]
                       + [{"id": s.id, "name": s.name, "version": s.version, "changed": False,
                           "in_file": s.name in in_file} for s in plan.unchanged],
                       removed=[s.name for s in plan.removed])

    @app.delete("/stacks/<path:name>")  # any name: one made before names were checked too
    def remove_stack(name):
        services = store.list_services(stack=name)
        if not services and store.get_stack(name) is None:
            raise NotFound(f"stack {name} not found")
        store.remove_services(services, stack_name=name)
        objects.remove_stack_objects(ctx, name)
        return jsonify(removed=[s.name for s in services])

    @app.get("/stacks/<name>/services")
    def stack_services(name):
        if store.get_stack(name) is None:
            raise NotFound(f"stack {name} not found")
        return jsonify(service_listing(store.list_services(stack=name)))

    @app.get("/stacks/<name>/tasks")
    def stack_tasks(name):
        if store.get_stack(name) is None:
            raise NotFound(f"stack {name} not found")
        return jsonify(task_listing(store.list_services(stack=name)))

    # ---------------------------------------------------------------- services

    def service_listing(services: list[Service]):
        ids = [s.id for s in services]
        # replicated services are counted from an index; the other modes need their tasks
        counted = [s.id for s in services if s.spec.deploy.mode == "replicated"]
        running = store.running_counts(counted)
        briefs = store.task_briefs([sid for sid in ids if sid not in running])
        updates, nodes = store.get_update_statuses(ids), store.list_nodes()
        return [views.service_summary(s, briefs.get(s.id, []), nodes, updates.get(s.id), running.get(s.id))
                for s in services]

    def task_listing(services: list[Service], node_id: str | None = None):
        nodes = {n.id: n for n in store.list_nodes()}
        tasks = store.tasks_of_services([s.id for s in services])
        images = {s.id: s.spec.image for s in services}
        out = []
        for s in services:
            out += [views.task_view(t, nodes, t.image or images.get(t.service_id)) for t in tasks.get(s.id, [])
                    if node_id is None or t.node_id == node_id]
        return out

    @app.get("/services")
    def list_services():
        return jsonify(service_listing(store.list_services(stack=request.args.get("stack"))))

    @app.get("/services/<ref>")
    def inspect_service(ref):
        service = store.find_service(ref)
        d = service.to_dict()
        d["summary"] = service_listing([service])[0]
        d["summary"]["routed"] = routed(service)
        d["dangerous_options"] = [what for _, what in validation.dangerous_options(service.spec)]
        d["update_status"] = store.get_update_status(service.id)
        d["endpoints"] = [t["endpoints"] for t in task_listing([service]) if t["state"] == "running"]
        d["endpoint"] = service_endpoint(service)
        d["lb"] = {lb_id: {p: v for p, v in status.get("ports", {}).items() if v.get("service_id") == service.id}
                   for lb_id, status in store.lb_statuses().items()}
        return jsonify(d)

    def routed(service: Service) -> bool:
        """Does every load balancer and node that sends to the service know its serving tasks (by its
        VIP, its name, its published ports)? A deploy is done when the service answers there."""
        needs_health = has_healthcheck(service.spec)
        serving = [t for t in store.tasks_of_service(service.id) if takes_traffic(t, needs_health)]
        if not serving:
            return True
        return not store.routes_behind(max(t.updated_at for t in serving), {n.id for n in service.networks},
                                       any(p.through_mesh for p in service.spec.ports))

    def service_endpoint(service: Service) -> dict:
        """Its VIP on each network (Swarm's `Endpoint.VirtualIPs`) and the addresses behind it."""
        vips = store.service_vips({service.id: [n.id for n in service.networks]})[service.id]
        needs_health = has_healthcheck(service.spec)
        tasks = [t for t in store.tasks_of_service(service.id) if takes_traffic(t, needs_health)]
        return {"mode": service.spec.deploy.endpoint_mode,
                "virtual_ips": [{"network_id": n.id, "network": n.name, "address": vips.get(n.id)}
                                for n in service.networks],
                "backends": {n.name: sorted(a.address for t in tasks for a in t.attachments if a.network_id == n.id)
                             for n in service.networks}}

    @app.get("/services/<ref>/tasks")
    def service_tasks(ref):
        return jsonify(task_listing([store.find_service(ref)]))

    @app.patch("/services/<ref>")
    def update_service(ref):
        b = _parse(bodies.ServiceScale)
        service = store.find_service(ref)
        version, replicas = b.version, b.replicas
        cap = max_replicas(store.cluster_info())
        if not 0 <= replicas <= cap:
            raise BadRequest(f"replicas must be from 0 to {cap} (the cluster's limit, "
                             "`swarmpy cluster update --max-replicas`)", field="replicas")
        if version is not None and version != service.version:
            raise Conflict(f"service {service.name} changed since version {version} (now {service.version})")
        scaled = stacks.scale(service, replicas)
        store.put_service(scaled, service.version)
        return jsonify(scaled.to_dict())

    @app.post("/services")
    def create_service():
        """`service create`: a service of no stack."""
        b = _parse(bodies.ServiceCreate)
        service = services.create(store, b.spec, cluster_limits(ctx, g.caller))
        return jsonify(service.to_dict()), 201

    @app.post("/services/<ref>/update")
    def update_service_spec(ref):
        """`service update`: the whole new spec; only a change to the tasks' part replaces them."""
        b = _parse(bodies.ServiceUpdate)
        service = store.find_service(ref)
        if b.version is not None and b.version != service.version:
            raise Conflict(f"service {service.name} changed since version {b.version} (now {service.version})")
        updated = services.update(store, service, b.spec, b.force, cluster_limits(ctx, g.caller))
        return jsonify({**updated.to_dict(), "changed": updated.version != service.version})

    @app.post("/services/<ref>/rollback")
    def rollback_service(ref):
        return jsonify(services.rollback(store, store.find_service(ref)).to_dict())

    @app.delete("/services/<ref>")
    def remove_service(ref):
        service = store.find_service(ref)
        store.remove_services([service])
        return jsonify(removed=service.name)

    @app.get("/services/<ref>/logs")
    def service_logs(ref):
        service = store.find_service(ref)
        follow, timestamps = _flag("follow"), _flag("timestamps")
        tail = request.args.get("tail", "all")
        if tail != "all":
            tail = str(_number("tail", 0, 0, 10_000_000))
        lines = node_ops.stream_logs(ctx, service, follow=follow, tail=tail, timestamps=timestamps)
        return Response(stream_with_context(lines), mimetype="application/x-ndjson")

    @app.post("/services/<ref>/exec")
    def exec_in_service(ref):
        """Open an exec in a running task; its output is read at /exec/<id>, its stdin sent to /exec/<id>/input."""
        b = _parse(bodies.ExecStart)
        validation.check_exec(b)
        try:
            return jsonify(execs.start(ctx, store.find_service(ref), b)), 201
        except execs.ExecError as e:
            raise BadRequest(str(e), field=e.field, status=e.status)

    def known_exec(exec_id: str) -> None:
        if store.exec_record(exec_id) is None:
            raise NotFound(f"exec {exec_id} not found")

    @app.get("/exec/<exec_id>")
    def exec_output(exec_id):
        known_exec(exec_id)
        return Response(stream_with_context(execs.output(ctx, exec_id)), mimetype="application/x-ndjson")

    @app.post("/exec/<exec_id>/input")
    def exec_input(exec_id):
        b = _parse(bodies.ExecInput)
        validation.check_exec_input(b)
        known_exec(exec_id)
        execs.send(ctx, exec_id, b)
        return jsonify(sent=True)

    @app.get("/tasks")
    def list_tasks():
        node_ref = request.args.get("node")
        node_id = store.find_node(node_ref).id if node_ref else None
        stack = request.args.get("stack")
        return jsonify(task_listing(store.list_services(stack=stack) + store.removed_services(stack=stack),
                                    node_id))

    # ---------------------------------------------------------------- secrets and configs

    @app.get("/<any(secrets, configs):plural>")
    def list_objects(plural):
        return jsonify(objects.listing(ctx, plural[:-1]))

    @app.post("/<any(secrets, configs):plural>")
    def create_object(plural):
        b, kind = _parse(bodies.ObjectCreate), plural[:-1]
        validation.check_name(kind, b.name)
        content = objects.decode(b.data, "data")
        if kind == "secret" and len(content) > objects.MAX_SECRET:
            raise BadRequest(f"a secret holds at most {objects.MAX_SECRET // 1024} KiB", field="data")
        return jsonify(objects.create(ctx, kind, b.name, content, b.labels)), 201

    # any name, `a/b` included: objects named before names were checked can still be inspected and removed
    @app.get("/<any(secrets, configs):plural>/<path:name>")
    def inspect_object(plural, name):
        return jsonify(objects.inspect(ctx, plural[:-1], name))

    @app.delete("/<any(secrets, configs):plural>/<path:name>")
    def remove_object(plural, name):
        return jsonify(removed=objects.remove(ctx, plural[:-1], name))

    # ---------------------------------------------------------------- networks

    def network_action(action, *args):
        try:
            return action(store, *args)
        except networks.NetworkError as e:
            raise BadRequest(str(e), field=e.field, status=e.status)

    @app.get("/networks")
    def list_networks():
        statuses, nodes = store.net_statuses(), {n.id: n for n in store.list_nodes()}
        return jsonify([networks.view(store, n, statuses, nodes) for n in store.list_networks()])

    @app.post("/networks")
    def create_network():
        b = _parse(bodies.NetworkCreate)
        validation.check_name("network", b.name)
        network = network_action(networks.create, b.name, b.subnet, b.attachable, b.internal, b.labels, b.mtu)
        return jsonify(networks.view(store, network)), 201

    @app.get("/networks/<ref>")
    def inspect_network(ref):
        return jsonify(networks.inspect(store, store.find_network(ref)))

    @app.delete("/networks/<path:ref>")
    def remove_network(ref):
        network = store.find_network(ref)
        network_action(networks.remove, network)
        return jsonify(removed=network.name)

    # ---------------------------------------------------------------- load balancers

    @app.get("/lb")
    def lb_status():
        return jsonify(store.lb_statuses())

    app.register_blueprint(dashboard(ctx))
    return app
