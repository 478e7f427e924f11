"""The node monitor's judgement: evidence about a node makes it Down; the watchers' own trouble
(a store that was away, every node failing at once, an engine only slow) does not."""

from __future__ import annotations

from swarmpy.manager.monitor import INCONCLUSIVE_LIMIT, MISSED_HEARTBEATS, assess, judge
from swarmpy.model import Node, NodeStatus

NOW, HEARTBEAT = 10_000.0, 5.0


def node(name: str, status=NodeStatus.READY, remote=True) -> Node:
    return Node(id=name, hostname=name, address="10.9.0.1", ssh_user="root" if remote else None,
                status=status, created_at=0.0)


def ok(at=NOW):
    return {"ok": True, "time": at, "message": ""}


def refused(at=NOW):
    return {"ok": False, "time": at, "message": "engine unreachable: connection refused"}


def slow(since, at=NOW):
    return {"ok": False, "time": at, "message": "engine answers too slowly", "conclusive": False, "since": since}


def test_a_refusing_engine_or_a_silent_watcher_makes_a_node_down():
    assert judge(node("a"), refused(), HEARTBEAT, NOW)[0] == NodeStatus.DOWN
    stale = ok(NOW - MISSED_HEARTBEATS * HEARTBEAT - 1)
    assert judge(node("a"), stale, HEARTBEAT, NOW) == (NodeStatus.DOWN, "heartbeat failure")
    assert judge(node("a"), ok(), HEARTBEAT, NOW) == (NodeStatus.READY, "")


def test_a_quiet_period_lets_watchers_report_again_after_the_store_was_away():
    stale = ok(NOW - 60)
    assert judge(node("a"), stale, HEARTBEAT, NOW, quiet=True)[0] == NodeStatus.READY
    assert judge(node("a"), None, HEARTBEAT, NOW, quiet=True)[0] == NodeStatus.READY
    # evidence still counts in a quiet period
    assert judge(node("a"), refused(), HEARTBEAT, NOW, quiet=True)[0] == NodeStatus.DOWN


def test_a_slow_engine_on_a_host_that_answers_is_not_down_until_it_lasts():
    assert judge(node("a"), slow(NOW - 20), HEARTBEAT, NOW)[0] == NodeStatus.READY
    long_ago = NOW - INCONCLUSIVE_LIMIT * HEARTBEAT - 1
    assert judge(node("a"), slow(long_ago), HEARTBEAT, NOW)[0] == NodeStatus.DOWN


def test_every_remote_node_failing_at_once_is_the_watchers_fault():
    nodes = [node("local", remote=False), node("a"), node("b"), node("c")]
    reports = {"local": ok(), "a": refused(), "b": refused(), "c": ok(NOW - 60)}
    changes, suspect = assess(nodes, reports, HEARTBEAT, NOW)
    assert suspect and changes == []
    # one node of three failing is that node's fault
    reports = {"local": ok(), "a": refused(), "b": ok(), "c": ok()}
    changes, suspect = assess(nodes, reports, HEARTBEAT, NOW)
    assert not suspect and [(n.id, s) for n, s, _ in changes] == [("a", NodeStatus.DOWN)]


def test_a_node_already_down_does_not_count_among_those_failing_at_once():
    nodes = [node("a", NodeStatus.DOWN), node("b"), node("c")]
    reports = {"a": refused(), "b": refused(), "c": ok()}
    changes, suspect = assess(nodes, reports, HEARTBEAT, NOW)
    assert not suspect and [n.id for n, _, _ in changes] == ["b"]
