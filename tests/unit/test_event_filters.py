"""`swarmpy events`: the filters (the CLI's flags, the API's matching) and the names events get."""

from __future__ import annotations

import click
import pytest

from swarmpy.cli.events import event_line, parse_filters, since_id
from swarmpy.manager.events import EventFilter, named
from swarmpy.model import Node, Service, ServiceSpec, Task


class Store:
    """What `named` reads of the store."""

    def __init__(self):
        self.services = {"s1": Service(id="s1", stack="shop", name="shop_web", spec=ServiceSpec(name="web", image="x"))}
        self.tasks = {"t1": Task(id="t1", service_id="s1", service_name="shop_web", spec_version=1, slot=2)}

    def get_services_live_or_removed(self, ids):
        removed = {"gone": Service(id="gone", stack="", name="old", spec=ServiceSpec(name="old", image="x"))}
        return ({i: self.services[i] for i in ids if i in self.services},
                {i: removed[i] for i in ids if i in removed})

    def get_tasks(self, ids):
        return [self.tasks[i] for i in ids if i in self.tasks]

    def list_nodes(self):
        return [Node(id="n1", hostname="node2", address="10.0.0.2")]


EVENTS = [{"kind": "service", "action": "update", "id": "s1"},
          {"kind": "task", "action": "state", "id": "t1", "service_id": "s1", "state": "running"},
          {"kind": "task", "action": "create", "id": "s1", "service_id": "s1"},
          {"kind": "node", "action": "update", "id": "n1"},
          {"kind": "service", "action": "forget", "id": "gone"},
          {"kind": "network", "action": "create", "id": "w1", "name": "shop_default"},
          {"kind": "task", "action": "desired", "id": ""}]


def test_events_get_the_names_of_what_they_are_about():
    got = named(Store(), EVENTS)
    assert [e.get("name") for e in got] == ["shop_web", "shop_web.2", "shop_web", "node2", "old", "shop_default",
                                            ""]
    assert got[1]["service"] == "shop_web"


def test_a_filter_matches_by_type_and_by_name_and_a_service_name_takes_its_tasks():
    got = named(Store(), EVENTS)
    kinds = EventFilter.parse("service,node", "")
    assert [e["kind"] for e in got if kinds.matches(e)] == ["service", "node", "service"]
    web = EventFilter.parse("", "shop_web")
    assert [(e["kind"], e["action"]) for e in got if web.matches(e)] == [
        ("service", "update"), ("task", "state"), ("task", "create")]
    both = EventFilter.parse("task", "shop_web.2")
    assert [e["id"] for e in got if both.matches(e)] == ["t1"]
    assert not EventFilter.parse("", "") and all(EventFilter().matches(e) for e in got)
    with pytest.raises(ValueError, match="type must be one of"):
        EventFilter.parse("container,image", "")


def test_the_cli_reads_docker_style_filters_and_times():
    assert parse_filters(("type=service", "name=web", "type=task")) == (["service", "task"], ["web"])
    for bad in ("type=image", "colour=red", "name="):
        with pytest.raises(click.BadParameter):
            parse_filters((bad,))
    assert since_id("10m", now=1000.0) == "400000-0"
    assert since_id("1718000000.5") == "1718000000500-0"
    assert since_id("1718000000000-3") == "1718000000000-3"
    assert since_id("2024-06-10T06:13:20+00:00") == "1718000000000-0"
    with pytest.raises(click.BadParameter):
        since_id("yesterday")


def test_an_event_line_names_its_attributes_and_leaves_out_empty_ones():
    line = event_line({"kind": "service", "action": "update", "id": "s1", "time": "0", "event_id": "1-0",
                       "name": "shop_web", "version": "2", "stack": ""})
    assert line.endswith(" service update s1 (name=shop_web, version=2)")
