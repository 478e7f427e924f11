"""`/metrics`: the manager's figures in Prometheus's text format, one scrape target per manager.

Four sources, one page:
- what the API process measures as it works: its requests (`API_MEASURED`);
- what its control loops' process measures (`LOOPS_MEASURED`: the passes, on
  the leader), served on a unix socket (`swarmpy.manager.loops`);
- the cluster's state, read from the store at scrape time (`ClusterCollector`):
  nodes, tasks, replicas, updates, job queues and job durations (the workers
  keep those in the store, `Store.observe_job`), and the store's round trip;
- the load balancer processes of this host (`swarmpy.lb.metrics`), read from
  their unix sockets, and on the leader those of the hosts with no manager.
Other processes' texts are merged family by family (`merge`).

Every manager shows the whole cluster's state (any one of them answers for it
while the others are away); the loops' histograms only move on the leader.
"""

from __future__ import annotations

import functools
import logging
import socket
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from swarmpy.manager import views
from swarmpy.model import Availability, NodeStatus
from swarmpy.settings import StateDir
from swarmpy.store import Store
from swarmpy.store.metrics import JOB_BUCKETS

log = logging.getLogger(__name__)

disable_created_metrics()  # no `_created` series: Prometheus's text format has no use for them

SOCKET_TIMEOUT = 2.0  # seconds a load balancer or the control loops may take to give their figures
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
LOOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

API_REQUESTS = Counter("swarmpy_api_requests_total", "API requests answered, by route and status",
                       ["method", "route", "status"], registry=None)
API_LATENCY = Histogram("swarmpy_api_request_duration_seconds", "Time to answer an API request (to its first "
                        "byte, for a stream)", ["method", "route"], registry=None)
RECONCILE = Histogram("swarmpy_reconcile_duration_seconds", "A pass of the orchestrator over the services that "
                      "changed (leader)", buckets=LOOP_BUCKETS, registry=None)
SCHEDULING = Histogram("swarmpy_scheduling_duration_seconds", "A pass of the scheduler placing pending tasks "
                       "(leader)", buckets=LOOP_BUCKETS, registry=None)
DISPATCH = Histogram("swarmpy_dispatch_duration_seconds", "A pass of the dispatcher enqueuing the due task "
                     "actions as jobs (leader)", buckets=LOOP_BUCKETS, registry=None)
API_MEASURED = (API_REQUESTS, API_LATENCY)
LOOPS_MEASURED = (RECONCILE, SCHEDULING, DISPATCH)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class ClusterCollector:
    """The cluster's state as the store has it at the time of the scrape (a few round trips).
    The store away, only `swarmpy_store_up 0` is said of it."""

    def __init__(self, store: Store, manager_id: str):
        self.store, self.manager_id = store, manager_id

    def collect(self):
        up = _gauge("swarmpy_store_up", "1 when this manager reaches the store (Redis)", [])
        try:
            rtt, families = self.read()
        except Exception as e:  # noqa: BLE001 - any fault of the store: the rest of the page still serves
            log.warning("metrics: cannot read the cluster's state: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        round_trip = _gauge("swarmpy_store_round_trip_seconds", "Time of a PING to the store from this manager", [])
        round_trip.add_metric([], rtt)
        yield round_trip
        yield from families

    def read(self) -> tuple[float, list]:
        store = self.store
        started = time.perf_counter()
        store.ping()
        rtt = time.perf_counter() - started
        nodes, services = store.list_nodes(), store.list_services()
        ids = [s.id for s in services]
        briefs, updates = store.task_briefs(ids), store.get_update_statuses(ids)
        with store.redis.pipeline(transaction=False) as p:
            for n in nodes:
                p.llen(Queue.redis_queue_namespace_prefix + store.queue_name(n.id))
            depths = p.execute()
        return rtt, state_families(nodes, services, briefs, updates, dict(zip((n.id for n in nodes), depths)),
                                   store.job_durations(), store.lease_holder("leader") == self.manager_id)


def state_families(nodes, services, briefs: dict[str, list[dict]], updates: dict[str, dict],
                   queue_depths: dict[str, int], jobs: dict[tuple[str, str], dict[str, float]],
                   leader: bool) -> list:
    """The cluster-state families, from what the store listed (a pure function: see the unit test)."""
    by_node = _gauge("swarmpy_nodes", "Nodes by status and availability", ["status", "availability"])
    for status in NodeStatus:
        for availability in Availability:
            by_node.add_metric([status.value, availability.value],
                               sum(1 for n in nodes if n.status == status and n.availability == availability))
    tasks = _gauge("swarmpy_tasks", "Tasks (history included) by service and state", ["service", "stack", "state"])
    desired = _gauge("swarmpy_service_replicas_desired", "Tasks a service wants running", ["service", "stack", "mode"])
    running = _gauge("swarmpy_service_replicas_running", "A service's tasks running (not on their way out)",
                     ["service", "stack"])
    update = _gauge("swarmpy_service_update_state", "1 for the state of a service's last update or rollback",
                    ["service", "stack", "state"])
    for s in services:
        labels = [s.name, s.stack or ""]
        counts: dict[str, int] = {}
        for t in briefs.get(s.id, []):
            counts[t["state"]] = counts.get(t["state"], 0) + 1
        for state, count in sorted(counts.items()):
            tasks.add_metric(labels + [state], count)
        now_running, wanted, _ = views.replicas(s, briefs.get(s.id, []), nodes)
        desired.add_metric(labels + [s.spec.deploy.mode], wanted)
        running.add_metric(labels, now_running)
        if (status := updates.get(s.id)) and status.get("state"):
            update.add_metric(labels + [status["state"]], 1)
    hostnames = {n.id: n.hostname for n in nodes}
    depth = _gauge("swarmpy_job_queue_depth", "Jobs waiting in a node's queue (rq)", ["node"])
    for node_id, count in queue_depths.items():
        depth.add_metric([hostnames.get(node_id, node_id)], count)
    durations = HistogramMetricFamily("swarmpy_job_duration_seconds", "Time a worker took for a job of a node "
                                      "(start_task, stop_task, ...)", labels=["node", "job"])
    for (node_id, job), counts in sorted(jobs.items()):
        if node_id not in hostnames:
            continue  # a node removed since
        buckets = [(str(bound), counts.get(str(bound), 0.0)) for bound in JOB_BUCKETS]
        durations.add_metric([hostnames[node_id], job], buckets + [("+Inf", counts.get("+Inf", 0.0))],
                             counts.get("sum", 0.0))
    leading = _gauge("swarmpy_manager_leader", "1 when this manager is the leader (runs the control loops)", [])
    leading.add_metric([], 1 if leader else 0)
    return [by_node, tasks, desired, running, update, depth, durations, leading]


# ---------------------------------------------------------------- other processes of this host

def read_local(state: StateDir, process: str) -> list[str]:
    """The text of every `process` ("lb", "loops") of this host; a socket nobody serves any more is removed."""
    texts = []
    for path in state.metrics_sockets(process):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(SOCKET_TIMEOUT)
                sock.connect(str(path))
                chunks = []
                while chunk := sock.recv(1 << 16):
                    chunks.append(chunk)
            texts.append(b"".join(chunks).decode())
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)  # its process is gone (killed before it could remove it)
        except (OSError, UnicodeDecodeError) as e:
            log.warning("metrics: no figures from %s: %s", path, e)
    return texts


def merge(texts: list[str]) -> list:
    """Families of several texts as one list: a family's samples from every text under one
    HELP and TYPE (the exposition format allows a family once). A text that does not parse is left out."""
    families: dict[str, object] = {}
    for text in texts:
        try:
            parsed = list(text_string_to_metric_families(text))
        except ValueError as e:
            log.warning("metrics: figures of another process do not parse: %s", e)
            continue
        for family in parsed:
            if family.name in families:
                families[family.name].samples.extend(family.samples)
            else:
                families[family.name] = family
    return list(families.values())


class LocalProcessesCollector:
    """The figures other processes keep: this host's load balancers and control loops, and on the
    leader the load balancers of the hosts with no manager (they push theirs to the store). Each
    figure is on one scrape target."""

    def __init__(self, state: StateDir | None, store=None, manager_id: str | None = None):
        self.state, self.store, self.manager_id = state, store, manager_id

    def collect(self):
        texts = (read_local(self.state, "lb") + read_local(self.state, "loops")) if self.state is not None else []
        if self.store is not None:
            try:
                if self.store.lease_holder("leader") == self.manager_id:
                    texts += self.store.pushed_lb_metrics()
            except Exception as e:  # noqa: BLE001 - the store is away: this host's figures still
                log.warning("metrics: no figures of the load balancers on hosts with no manager: %s", e)
        return merge(texts)


# ---------------------------------------------------------------- the route

def blueprint(ctx) -> Blueprint:
    """`GET /metrics`, and the counting of every request of the app (hooks on the whole app:
    register this blueprint before the app's own hooks, so that refused requests are timed too)."""
    page = CollectorRegistry(auto_describe=False)
    for metric in API_MEASURED:
        page.register(metric)
    page.register(ClusterCollector(ctx.store, ctx.manager_id))
    page.register(LocalProcessesCollector(ctx.state, ctx.store, ctx.manager_id))
    bp = Blueprint("metrics", __name__)

    @bp.before_app_request
    def started():
        g.metrics_started = time.perf_counter()

    # a labelled child found once: `labels()` takes a lock and checks its values on every call
    # (routes, methods and statuses are few)
    requests_of = functools.cache(API_REQUESTS.labels)
    latency_of = functools.cache(API_LATENCY.labels)

    @bp.after_app_request
    def counted(response):
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        method = request.method if request.method in METHODS else "(other)"
        requests_of(method, route, response.status_code).inc()
        if (since := g.get("metrics_started")) is not None:
            latency_of(method, route).observe(time.perf_counter() - since)
        return response

    @bp.get("/metrics")
    def metrics():
        return Response(generate_latest(page), mimetype=None, content_type=CONTENT_TYPE_LATEST)

    return bp
