"""The store's state indexes against a real redis-server (no lab needed)."""

import shutil
import socket
import subprocess
import threading
import time

import pytest
import redis

from swarmpy.model import DesiredState, Task, TaskState
from swarmpy.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server (run scripts/setup.sh)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a directory of its own: a replica's full sync writes dump.rdb in it, and a server loads one it finds
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
                              stdout=subprocess.DEVNULL)
    try:
        connection = redis.Redis(port=port, decode_responses=True)
        for _ in range(100):
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield Store(connection)
    finally:
        server.terminate()
        server.wait(10)


def _tasks(store: Store, count: int) -> list[Task]:
    tasks = [Task(id=f"t{i}", service_id="svc", service_name="app_web", spec_version=1, slot=i,
                  node_id="n1", state=TaskState.PENDING) for i in range(1, count + 1)]
    store.create_tasks(tasks)
    return tasks


def _run(store: Store, task: Task) -> None:
    for state in (TaskState.ASSIGNED, TaskState.PREPARING, TaskState.STARTING, TaskState.RUNNING):
        store.update_task_status(task.id, state)


def test_running_count_follows_states_desired_states_and_deletes(store):
    store.flush()
    tasks = _tasks(store, 4)
    assert store.running_counts(["svc"]) == {"svc": 0}
    assert store.pending_task_ids() == {"t1", "t2", "t3", "t4"}
    assert store.pending_task_ids({"svc"}) == {"t1", "t2", "t3", "t4"}
    for t in tasks:
        _run(store, t)
    assert store.running_counts(["svc"]) == {"svc": 4}
    assert store.pending_task_ids() == set()

    store.update_task_status("t1", TaskState.FAILED, error="exit 1")
    store.set_desired_state([store.get_task("t2")], DesiredState.SHUTDOWN)  # still running, on its way out
    store.delete_tasks([store.get_task("t3")])
    assert store.running_counts(["svc", "other"]) == {"svc": 1, "other": 0}
    # a stale report cannot bring an ended task back into the count
    assert store.update_task_status("t1", TaskState.RUNNING) is None
    assert store.running_counts(["svc"]) == {"svc": 1}
    store.flush()


def test_running_index_is_built_for_a_store_written_without_it(store):
    store.flush()
    for t in _tasks(store, 3):
        _run(store, t)
    store.redis.delete(store.key("service", "svc", "running"))  # as an older swarmpy left it
    store.build_running_index()
    assert store.running_counts(["svc"]) == {"svc": 3}
    store.redis.delete(store.key("service", "svc", "running"))
    store.build_running_index()  # once per store: from then on the state changes keep it
    assert store.running_counts(["svc"]) == {"svc": 0}
    store.flush()



def test_a_desired_state_written_from_a_stale_copy_keeps_the_node_the_scheduler_gave(store):
    """The orchestrator shuts down a task it read while it was pending; the scheduler placed it
    meanwhile. The task must keep its node, or no one could stop it there (a wedged update)."""
    store.flush()
    stale = Task(id="t1", service_id="svc", service_name="app_web", spec_version=2, slot=1,
                 state=TaskState.PENDING, restart_history=[1.5], created_at=1764561234.123456)
    store.create_tasks([stale])
    assert [t.id for t in store.assign_tasks({"t1": "n2"}, {})] == ["t1"]
    store.set_desired_state([stale], DesiredState.SHUTDOWN)
    now = store.get_task("t1")
    assert (now.node_id, now.state, now.desired_state) == ("n2", TaskState.ASSIGNED, DesiredState.SHUTDOWN)
    assert now.desired_at > 0 and now.restart_history == [1.5] and now.created_at == 1764561234.123456
    store.set_desired_state([now], DesiredState.RUNNING)  # and back: only those two fields change
    again = store.get_task("t1")
    assert again.desired_state == DesiredState.RUNNING and again.copy(desired_state=now.desired_state,
                                                                      desired_at=now.desired_at) == now


def test_the_loops_share_one_reader_of_the_event_stream(store, monkeypatch):
    from swarmpy.manager import feed as feed_module
    feed = feed_module.EventFeed(store)
    direct = []
    reads = store.read_events

    def counted(after, block_ms=None, count=1000):
        if threading.current_thread() is not feed:
            direct.append(after)
        return reads(after, block_ms=block_ms, count=count)
    monkeypatch.setattr(store, "read_events", counted)
    monkeypatch.setattr(feed_module, "KEEP", 5)
    feed.start()
    try:
        wait_until(lambda: feed.base is not None)
        cursor = store.last_event_id()
        # two loops waiting: both get the event the moment it is written, and neither read the store
        got: dict[str, list] = {}
        waiters = [threading.Thread(target=lambda n=n: got.setdefault(n, feed.read_events(cursor, block_ms=5000)))
                   for n in ("a", "b")]
        for w in waiters:
            w.start()
        time.sleep(0.2)
        store.publish("service", "update", "s1")
        for w in waiters:
            w.join(5)
        assert [e["id"] for _, e in got["a"]] == [e["id"] for _, e in got["b"]] == ["s1"]
        for i in range(2, 9):
            store.publish("service", "update", f"s{i}")
        ids = [i for i, _ in reads(cursor)]  # s1..s8 (read apart from the count)
        wait_until(lambda: feed.held and feed.held[-1][1] == ids[-1])
        # it holds the last five: a loop at s3 reads s4..s8 from it
        assert [e["id"] for _, e in feed.read_events(ids[2])] == [f"s{i}" for i in range(4, 9)]
        assert direct == []
        # a loop further behind than the feed holds reads the store itself, and misses nothing
        behind = feed.read_events(ids[0])
        assert [e["id"] for _, e in behind] == [f"s{i}" for i in range(2, 9)] and direct == [ids[0]]
        assert feed.read_events(behind[-1][0], block_ms=100) == []  # nothing new: it waited, then nothing
    finally:
        feed.stop()
        feed.join(5)


def test_an_event_no_loop_acts_on_wakes_none_of_them(store):
    """A redeploy that changes only a label: the feed holds its event, but a waiting loop sleeps on
    until an event it may act on comes (or its wait ends), and then reads both."""
    from swarmpy.manager import feed as feed_module
    feed = feed_module.EventFeed(store)
    feed.start()
    try:
        wait_until(lambda: feed.base is not None)
        store.publish("service", "update", "w1", behaviour="d1")
        wait_until(lambda: feed.held and feed.held[-1][2]["id"] == "w1")
        cursor = feed.held[-1][1]
        got, woke = [], threading.Event()

        def loop():  # it waits far longer than the test: only a wake ends its wait
            got.extend(feed.read_events(cursor, block_ms=30_000))
            woke.set()
        threading.Thread(target=loop, daemon=True).start()
        time.sleep(0.5)
        # the same behaviour (a label changed), and the stack's record written with it
        store.publish("service", "update", "w1", behaviour="d1")
        store.publish("stack", "update", "wstack")
        wait_until(lambda: feed.held[-1][2]["kind"] == "stack")
        assert not woke.wait(0.5), f"woken by an event it lets pass: {got}"
        store.publish("service", "update", "w1", behaviour="d2")
        assert woke.wait(1), "not woken by a change"
        assert [(e["id"], e.get("behaviour")) for _, e in got] == [("w1", "d1"), ("wstack", None), ("w1", "d2")]
        # a loop whose wait ends reads what is held, woken or not
        assert len(feed.read_events(cursor, block_ms=0)) == 3
    finally:
        feed.stop()
        feed.join(5)


def test_a_long_run_of_writes_is_read_in_batches_and_a_chain_of_a_few_at_once(store, monkeypatch):
    """A consumer reads a long run of writes at most once per READ_PACE (a stream of deploy calls woke
    every consumer on each, ~0.2 ms of CPU each, on the API's cores); a chain of a few changes, each
    written once the one before was read (orchestrator, scheduler, dispatcher), is not held up."""
    from swarmpy.manager import feed as feed_module
    pace = 0.3  # far longer than a read takes, even on a loaded machine
    monkeypatch.setattr(feed_module, "READ_PACE", pace)
    feed = feed_module.EventFeed(store)
    found = []  # the feed's reads that found events
    reads = store.read_events

    def counted(after, block_ms=None, count=1000):
        events = reads(after, block_ms=block_ms, count=count)
        if events and threading.current_thread() is feed:
            found.append(len(events))
        return events
    monkeypatch.setattr(store, "read_events", counted)
    feed.start()
    try:
        wait_until(lambda: feed.base is not None)
        cursor = store.last_event_id()
        for hop in range(3):  # a chain: each write made once the one before was read
            written = time.monotonic()
            store.publish("service", "update", f"hop{hop}")
            got = feed.read_events(cursor, block_ms=5000)
            assert [e["id"] for _, e in got] == [f"hop{hop}"]
            assert time.monotonic() - written < pace / 3, f"hop {hop} waited for the pace"
            cursor = got[-1][0]
        time.sleep(feed.pace.burst * pace)  # a quiet spell: the reads' allowance is back
        found.clear()
        started = time.monotonic()
        for i in range(60):  # a long run: 60 writes over about 1.2 s
            store.publish("service", "update", f"b{i}")
            time.sleep(0.02)
        wait_until(lambda: feed.held[-1][2]["id"] == "b59")
        spent = time.monotonic() - started
        assert sum(found) == 60
        # the allowance of a few at once, then one read per pace
        allowed = feed.pace.burst + spent / pace + 1
        assert len(found) <= allowed, f"{len(found)} reads in {spent:.2f} s: {found}"
    finally:
        feed.stop()
        feed.join(5)


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def test_a_stack_write_checks_what_it_was_planned_on_and_writes_nothing_when_refused(store):
    from swarmpy.model import Network, Port, Service, ServiceNetwork, ServiceSpec
    from swarmpy.store import Conflict
    front = Network(id="nf", name="st_front", subnet="10.9.1.0/24", gateway="10.9.1.1", vni=4101, stack="st")
    web = Service(id="w1", stack="st", name="st_web", spec=ServiceSpec(name="web", image="busybox"),
                  networks=[ServiceNetwork(id="nf", name="st_front")])
    store.write_stack({"name": "st", "services": ["w1"]}, [web], [], {}, [front])
    assert store.get_service("w1").version == 1 and store.get_network("nf").name == "st_front"
    assert store.get_stack("st")["services"] == ["w1"]

    def as_stored() -> str:
        return store.redis.hget(store.key("stacks"), "st")

    def refused(changed, expected, networks=(), match="", removed=(), was=None):
        before = store.redis.xlen(store.events_key), store.redis.hgetall(store.key("service", "names"))
        with pytest.raises(Conflict, match=match):
            store.write_stack({"name": "st", "services": ["w1"], "round": 2}, changed, list(removed), expected,
                              list(networks), as_stored() if was is None else was)
        assert (store.redis.xlen(store.events_key), store.redis.hgetall(store.key("service", "names"))) == before
        assert "round" not in store.get_stack("st")

    moved = Service.from_dict({**web.to_dict(), "version": 2})
    refused([moved], {"w1": 7}, match="changed since version 7")  # the caller read a version that is gone
    refused([], {}, removed=[moved], match="changed since version 2")  # a service removed: as read, too
    lost = Service.from_dict({**moved.to_dict(), "networks": [{"id": "gone", "name": "st_back"}]})
    refused([lost], {"w1": 1}, match="network st_back was removed meanwhile")
    twin = Network(id="nf2", name="st_front", subnet="10.9.2.0/24", gateway="10.9.2.1", vni=4102, stack="st")
    refused([moved], {"w1": 1}, [twin], match="clashes with network st_front")
    refused([moved], {"w1": 1}, was="{}", match="the stack changed")  # another deploy of it came first
    refused([moved], {"w1": 1}, was="", match="the stack changed")  # one planned as a new stack
    # a service of another stack took the name, or the port, since the plan was made
    other = Service(id="o1", stack="ot", name="ot_api", spec=ServiceSpec(name="api", image="busybox",
                                                                         ports=[Port(target=80, published=8080)]))
    store.write_stack({"name": "ot", "services": ["o1"]}, [other], [], {})
    clash = Service(id="w2", stack="st", name="ot_api", spec=ServiceSpec(name="api", image="busybox"))
    refused([clash], {}, match="service name ot_api was taken meanwhile")
    publishing = Service.from_dict({**moved.to_dict(), "spec": {**moved.spec.to_dict(),
                                                                "ports": [Port(target=80, published=8080).to_dict()]}})
    refused([publishing], {"w1": 1}, match="port 8080/tcp was published by service ot_api meanwhile")

    # what others wrote meanwhile, elsewhere, does not refuse it (a WATCH of every service did)
    store.write_stack({"name": "ot", "services": ["o1"]}, [Service.from_dict({**other.to_dict(), "version": 2})],
                      [], {"o1": 1}, stack_was=store.redis.hget(store.key("stacks"), "ot"))
    store.write_stack({"name": "st", "services": ["w1"]}, [moved], [], {"w1": 1}, stack_was=as_stored())
    assert store.get_service("w1").version == 2 and store.get_service("o1").version == 2
    # a port its own stack's service gives up in the same write may be taken by another of them
    store.write_stack({"name": "ot", "services": ["o2"]}, [Service(id="o2", stack="ot", name="ot_web",
                      spec=ServiceSpec(name="web", image="busybox", ports=[Port(target=80, published=8080)]))],
                      [Service.from_dict({**other.to_dict(), "version": 2})], {},
                      stack_was=store.redis.hget(store.key("stacks"), "ot"))
    assert store.published_ports() == {(8080, "tcp"): "ot_web"}
    assert store.get_service("o1", removed=True).name == "ot_api" and store.service_id_by_name("ot_api") is None


def test_one_services_write_takes_no_port_another_holds_and_indexes_its_ports_with_the_record(store):
    """`service update --publish`, a scale, a rollback: one service's write. Its ports index was
    written after its record, and a port another service held was not checked: two updates (or a
    rollback to a port taken since) could both publish one port."""
    from swarmpy.model import Port, Service, ServiceSpec
    from swarmpy.store import Conflict, NotFound
    store.flush()

    def service(id, name, version=1, published=()):
        return Service(id=id, stack="", name=name, version=version, spec=ServiceSpec(
            name=name, image="busybox", ports=[Port(target=80, published=p) for p in published]))
    store.add_service(service("a", "api", published=[8080]))
    store.add_service(service("b", "web"))
    assert store.published_ports() == {(8080, "tcp"): "api"}

    events = store.redis.xlen(store.events_key)
    with pytest.raises(Conflict, match="port 8080/tcp was published by service api meanwhile"):
        store.put_service(service("b", "web", 2, [8080]), 1)
    assert store.get_service("b").version == 1 and store.published_ports() == {(8080, "tcp"): "api"}
    assert store.redis.xlen(store.events_key) == events  # nothing written, no event
    with pytest.raises(Conflict, match="service web changed since version 7"):
        store.put_service(service("b", "web", 8, [9090]), 7)
    with pytest.raises(NotFound):
        store.put_service(service("nope", "nope", 2), 1)

    store.put_service(service("a", "api", 2, [8080, 8081]), 1)  # its own port stays its own
    store.put_service(service("b", "web", 2, [9090]), 1)
    assert store.published_ports() == {(8080, "tcp"): "api", (8081, "tcp"): "api", (9090, "tcp"): "web"}
    assert store.redis.xlen(store.events_key) == events + 2
    store.put_service(service("a", "api", 3), 2)  # gives them up: another may take them
    store.put_service(service("b", "web", 3, [8080]), 2)
    assert store.published_ports() == {(8080, "tcp"): "web"} and store.get_service("b").version == 3


def test_services_are_read_live_or_as_the_tombstones_of_removed_ones(store):
    from swarmpy.model import Service, ServiceSpec
    kept, gone = (Service(id=i, stack="tomb", name=f"tomb_{i}", spec=ServiceSpec(name=i, image="busybox"))
                  for i in ("k1", "g1"))
    store.write_stack({"name": "tomb", "services": ["k1", "g1"]}, [kept, gone], [], {})
    store.remove_services([gone])
    live, removed = store.get_services_live_or_removed(["k1", "g1", "never"])
    assert set(live) == {"k1"} and live["k1"].name == "tomb_k1"
    assert set(removed) == {"g1"} and removed["g1"].name == "tomb_g1"
    assert store.get_services_live_or_removed([]) == ({}, {})


def test_what_a_deploy_is_planned_on_is_read_in_one_script(store):
    from swarmpy.model import Node, Port, Service, ServiceSpec
    node = store.put_node(Node(id="pn1", hostname="plan-node", address="10.0.9.9"), None, action="create")
    store.put_net_status(node.id, {"applied_at": 1.0, "taken": ["172.17.0.0/16"]})
    api = Service(id="pa1", stack="plan", name="plan_api",
                  spec=ServiceSpec(name="api", image="busybox", ports=[Port(target=80, published=8181)]))
    store.write_stack({"name": "plan", "services": ["pa1"]}, [api], [], {})
    store.redis.hset(store.key("cluster"), "max_replicas", "7")
    facts = store.plan_facts("plan")
    assert [s.name for s in facts.services] == ["plan_api"] and facts.stack["services"] == ["pa1"]
    assert facts.stack_raw == store.redis.hget(store.key("stacks"), "plan")
    assert facts.cluster["max_replicas"] == "7" and facts.published[(8181, "tcp")] == "plan_api"
    assert "plan-node" in {n.hostname for n in facts.nodes}
    assert facts.net_statuses[node.id]["taken"] == ["172.17.0.0/16"]
    assert {n.name for n in facts.networks} == {n.name for n in store.list_networks()}
    # no stack asked for, or one that is not there: no record, no services
    for nothing in (store.plan_facts(), store.plan_facts("absent")):
        assert nothing.stack is None and nothing.stack_raw is None and nothing.services == []
        assert nothing.published == facts.published


def test_a_stack_write_counts_the_replicas_that_the_api_then_waits_for(store, tmp_path):
    from swarmpy.model import Service, ServiceSpec
    one = Service(id="r1", stack="rep", name="rep_one", spec=ServiceSpec(name="one", image="busybox"))
    assert store.write_stack({"name": "rep", "services": ["r1"]}, [one], [], {}) == 0
    master_port = store.redis.connection_pool.connection_kwargs["port"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    replica = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--replicaof", "127.0.0.1", str(master_port),
                                "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: store.redis.info("replication")["connected_slaves"] == 1, 10)
        again = Service.from_dict({**one.to_dict(), "version": 2})
        assert store.write_stack({"name": "rep", "services": ["r1"]}, [again], [], {"r1": 1},
                                 stack_was=store.redis.hget(store.key("stacks"), "rep")) == 1
        assert store.wait_replicated(5, replicas=1)  # and the replica confirms it
    finally:
        replica.terminate()
        replica.wait(10)
    wait_until(lambda: store.redis.info("replication")["connected_slaves"] == 0, 10)  # as the next test expects


def test_a_scheduler_pass_writes_and_reads_again_only_tasks_whose_reason_to_wait_changed(store, monkeypatch):
    from swarmpy.manager.scheduling import SchedulerLoop
    from swarmpy.model import Service, ServiceSpec
    waiting = Service(id="wsvc", stack="wait", name="wait_app", spec=ServiceSpec(name="app", image="busybox"))
    store.write_stack({"name": "wait", "services": ["wsvc"]}, [waiting], [], {})
    store.create_tasks([Task(id=f"w{i}", service_id="wsvc", service_name="wait_app", spec_version=1, slot=i,
                             state=TaskState.PENDING) for i in range(1, 31)])
    written = []
    real = store.assign_tasks
    monkeypatch.setattr(store, "assign_tasks", lambda assignments, failures: written.append(dict(failures))
                        or real(assignments, failures))
    loop = SchedulerLoop(store)
    loop.schedule({"wsvc"})  # no node at all: each task is told why it waits
    assert len(written[0]) == 30 and all(store.get_task(f"w{i}").error for i in range(1, 31))
    loop.schedule({"wsvc"})  # the same reason again: nothing to write
    assert written[1] == {}


def test_routes_behind_names_each_sender_not_yet_past_a_change(store):
    """A stopping task waits for these; the stop job names them when it gives up waiting."""
    store.flush()  # no other test's statuses
    store.put_net_status("rb-node1", {"applied_at": 10.0, "networks": ["rb-net-a"]})
    store.put_net_status("rb-node2", {"applied_at": 20.0, "networks": ["rb-net-a", "rb-net-b"]})
    store.put_lb_status("rb-lb", {"applied_at": 15.0})
    assert store.routes_behind(12.0, {"rb-net-a"}, ingress=False) == ["rb-node1"]
    assert store.routes_behind(12.0, {"rb-net-b"}, ingress=False) == []  # node1 has nothing of net-b
    assert store.routes_behind(18.0, {"rb-net-b"}, ingress=True) == ["lb rb-lb"]
    assert store.routes_behind(25.0, set(), ingress=False) == []
    assert sorted(store.routes_behind(25.0, {"rb-net-a"}, ingress=True)) == ["lb rb-lb", "rb-node1", "rb-node2"]
