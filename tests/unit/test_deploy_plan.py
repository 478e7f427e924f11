"""`stack deploy --plan`: the manager's description of a deploy (fields, tasks), and its text."""

from __future__ import annotations

from swarmpy.cli.plan import render
from swarmpy.manager.stacks import describe_plan, field_changes, plan_stack
from swarmpy.model import DeploySpec, DesiredState, ServiceSpec, StackSpec, Task, UpdateConfig


def web(image="swarmpy/nginx:1", replicas=3, **deploy) -> ServiceSpec:
    return ServiceSpec(name="web", image=image, deploy=DeploySpec(replicas=replicas, **deploy))


def tasks_of(service, count: int, stopped: int = 0) -> list[Task]:
    live = [Task(id=f"t{i}", service_id=service.id, service_name=service.name, spec_version=1, slot=i)
            for i in range(1, count + 1)]
    dead = [Task(id=f"old{i}", service_id=service.id, service_name=service.name, spec_version=1, slot=i,
                 desired_state=DesiredState.SHUTDOWN) for i in range(1, stopped + 1)]
    return live + dead


def planned(before: StackSpec, after: StackSpec, prune=False, tasks=3):
    existing = plan_stack("shop", before, [], {}, prune=False).changed
    plan = plan_stack("shop", after, existing, {}, prune=prune)
    described = describe_plan(plan, after, existing, {s.id: tasks_of(s, tasks, stopped=1) for s in existing}, None)
    return described, render(described)


def test_field_changes_go_into_dicts_and_compare_lists_whole():
    assert field_changes({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"b": 2, "c": [1, 2]}, "d": 2, "e": 3}) == [
        {"field": "a.b", "old": 1, "new": 2}, {"field": "a.c", "old": [1], "new": [1, 2]},
        {"field": "e", "old": None, "new": 3}]


def test_a_new_image_replaces_every_running_task_under_its_update_config():
    described, lines = planned(StackSpec(services={"web": web()}),
                               StackSpec(services={"web": web(image="swarmpy/nginx:2")}))
    (svc,) = described["services"]
    assert svc["changes"] == [{"field": "image", "old": "swarmpy/nginx:1", "new": "swarmpy/nginx:2"}]
    assert [t["id"] for t in svc["replace"]] == ["t1", "t2", "t3"]  # not the task already shut down
    assert lines[:2] == ["~ shop_web: image swarmpy/nginx:1 -> swarmpy/nginx:2",
                         "    replaces 3 tasks (shop_web.1, shop_web.2, shop_web.3) under update_config: "
                         "parallelism 1, stop-first"]
    assert lines[-1] == "Plan: 0 to create, 1 to update, 0 to remove; 3 tasks replaced."


def test_scaling_replaces_nothing_and_names_the_tasks_it_stops():
    described, lines = planned(StackSpec(services={"web": web()}), StackSpec(services={"web": web(replicas=1)}))
    (svc,) = described["services"]
    assert svc["replace"] == [] and [t["name"] for t in svc["stop"]] == ["shop_web.2", "shop_web.3"]
    assert "~ shop_web: deploy.replicas 3 -> 1" in lines and "    stops 2 tasks (shop_web.2, shop_web.3)" in lines
    _, lines = planned(StackSpec(services={"web": web()}), StackSpec(services={"web": web(replicas=5)}))
    assert "    starts 2 new tasks" in lines


def test_an_image_change_with_fewer_replicas_replaces_only_the_slots_that_stay():
    described, _ = planned(StackSpec(services={"web": web()}),
                           StackSpec(services={"web": web(image="x:2", replicas=2,
                                                          update_config=UpdateConfig(parallelism=2,
                                                                                     order="start-first"))}))
    (svc,) = described["services"]
    assert [t["name"] for t in svc["replace"]] == ["shop_web.1", "shop_web.2"]
    assert svc["update_config"]["order"] == "start-first"


def test_new_removed_kept_and_unchanged_services():
    before = StackSpec(services={"web": web(), "old": ServiceSpec(name="old", image="x")})
    after = StackSpec(services={"web": web(), "api": ServiceSpec(name="api", image="y",
                                                                    deploy=DeploySpec(replicas=3))})
    _, kept = planned(before, after)
    assert set(kept[:3]) == {"= shop_web (unchanged)", "+ shop_api (new, 3 replicas)",
                             "  shop_old (not in the file: kept; --prune would remove it)"}
    described, pruned = planned(before, after, prune=True)
    assert "- shop_old (removed: not in the file, and --prune); stops 3 tasks (shop_old.1, shop_old.2, shop_old.3)" \
        in pruned
    assert pruned[-1] == "Plan: 1 to create, 0 to update, 1 to remove; 0 tasks replaced."
