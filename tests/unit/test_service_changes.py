"""Service events say whether the service's behaviour changed: a consumer of the stream lets pass
one that changes nothing it acts on (a redeploy that changes a label of the user's only)."""

from __future__ import annotations

from swarmpy.model import DeploySpec, Port, Service, ServiceSpec, behaviour_of
from swarmpy.store import SeenBehaviour

WEB = Service(id="s1", stack="shop", name="shop_web", version=3, updated_at=10.0,
              spec=ServiceSpec(name="web", image="nginx", deploy=DeploySpec(replicas=2, labels={"team": "a"})))


def changed(**deploy) -> Service:
    return WEB.copy(spec=WEB.spec.copy(deploy=WEB.spec.deploy.copy(**deploy)))


def test_the_behaviour_leaves_out_the_revision_the_times_and_the_users_labels():
    same = behaviour_of(WEB.to_dict())
    assert behaviour_of(changed(labels={"team": "b", "deployed-by": "ci"}).to_dict()) == same
    assert behaviour_of(WEB.copy(version=4, updated_at=11.0).to_dict()) == same
    # what the cluster acts on: its own labels (the mesh's), the replicas, the spec, the update state
    assert behaviour_of(changed(labels={"team": "a", "com.swarmpy.lb.strategy": "least-conn"}).to_dict()) != same
    assert behaviour_of(changed(replicas=3).to_dict()) != same
    assert behaviour_of(WEB.copy(spec=WEB.spec.copy(ports=[Port(target=80, published=8080)])).to_dict()) != same
    assert behaviour_of(WEB.copy(update_state="paused").to_dict()) != same


def event(action: str, service: Service | None = None, sid: str = "s1") -> dict:
    e = {"kind": "service", "action": action, "id": sid}
    if service is not None:
        e["behaviour"] = behaviour_of(service.to_dict())
    return e


def test_a_consumer_lets_pass_what_says_the_same_behaviour_again_and_nothing_else():
    seen = SeenBehaviour()
    relabelled = changed(labels={"team": "b"}).copy(version=4)
    assert not seen.unchanged(event("create", WEB))  # the first word of a service
    assert seen.unchanged(event("update", relabelled))
    assert not seen.unchanged(event("vip", sid="s1"))  # new addresses: always news
    assert seen.unchanged(event("update", relabelled))  # ... and they do not change its behaviour
    assert not seen.unchanged(event("update", changed(replicas=5)))
    assert not seen.unchanged(event("update", WEB))  # back as it was: a change again
    assert not seen.unchanged(event("update"))  # an event without the digest (an older manager's)
    assert not seen.unchanged(event("update", WEB))
    assert not seen.unchanged(event("remove", WEB)) and not seen.unchanged(event("create", WEB))
    assert not seen.unchanged({"kind": "task", "action": "state", "id": "t1", "service_id": "s1"})
    seen.forget()  # after a gap in the stream: the consumer has read everything again
    assert not seen.unchanged(event("update", WEB))


class ScriptedStore:
    """A store whose stream gives these batches of events, then stops the loop; `gap_before` names
    the batches before which the stream says it lost events."""

    def __init__(self, batches: list[list[dict]], gap_before: set[int]):
        self.batches, self.gap_before, self.read, self.loop = batches, gap_before, 0, None

    def last_event_id(self) -> str:
        return "0-0"

    def events_missed(self, after: str) -> str | None:
        return after if self.read in self.gap_before and self.read < len(self.batches) else None

    def read_events(self, after: str, block_ms=None) -> list:
        if self.read == len(self.batches):
            self.loop.stop(wait=False)
            return []
        self.read += 1
        return [(f"{self.read}-{i}", e) for i, e in enumerate(self.batches[self.read - 1])]


def test_a_control_loop_is_not_woken_by_a_label_and_is_again_after_a_gap():
    from swarmpy.manager.component import Component

    class Loop(Component):
        gap_check_every, full_pass_every = 0.0, 3600.0

        def __init__(self, store):
            super().__init__(store)
            self.handled: list[list[tuple[str, str]]] = []
            self.passes = 0

        def reconcile_all(self):
            self.passes += 1

        def handle(self, events):
            self.handled.append([(e["kind"], e["action"]) for _, e in events])

    relabelled = event("update", changed(labels={"team": "b"}).copy(version=4))
    store = ScriptedStore([[event("create", WEB)], [relabelled], [relabelled, {"kind": "node", "action": "update"}],
                           [relabelled]], gap_before={3})
    loop = Loop(store)
    store.loop = loop
    loop.run()
    # the relabelled service's event alone woke nothing; after the gap (a full pass) it is news again
    assert loop.handled == [[("service", "create")], [("node", "update")], [("service", "update")]]
    assert loop.passes == 2
