"""`service create | update | rollback` on the manager: what becomes a new version of the tasks,
what keeps them, and what is refused with nothing written."""

from __future__ import annotations

import pytest

from swarmpy.manager import services, stacks
from swarmpy.model import FileReference, Port, Service, ServiceSpec
from swarmpy.model.validation import Invalid
from swarmpy.store import Conflict


class Store:
    """The store's part `services` uses, in memory."""

    def __init__(self, *existing: Service, objects=(), published=None):
        self.services = {s.id: s for s in existing}
        self.objects = set(objects)  # (kind, name)
        self.published = published or {}
        self.status = {}

    def resolve_object_name(self, kind, stack, source):
        return source if not stack else f"{stack}_{source}"

    def get_object(self, kind, name):
        return {"name": name} if (kind, name) in self.objects else None

    def get_stack(self, name):
        return {"name": name} if name else None

    def published_ports(self):
        return dict(self.published)

    def service_id_by_name(self, name):
        return next((s.id for s in self.services.values() if s.name == name), None)

    def find_network(self, ref):
        from swarmpy.store import NotFound
        raise NotFound(ref)

    def add_service(self, service):
        self.services[service.id] = service

    def put_service(self, service, expected_version):
        if self.services[service.id].version != expected_version:
            raise Conflict("moved")
        self.services[service.id] = service

    def set_update_status(self, sid, status):
        self.status[sid] = status


LIMITS = {"max_replicas": 10, "reserved_ports": {(2378, "tcp"): "the managers' API"}, "allow_privileged": False}
WEB = ServiceSpec(name="web", image="nginx:1.25", environment={"A": "1"}, ports=[Port(target=80, published=8080)])


def created(store=None) -> tuple[Store, Service]:
    store = store or Store()
    service = services.create(store, WEB.copy(), LIMITS)
    return store, service


def test_create_makes_a_service_of_no_stack_named_as_it_is():
    store, service = created()
    assert (service.stack, service.name, service.version, service.spec_version) == ("", "web", 1, 1)
    assert service.networks == [] and store.services[service.id] == service


def test_create_refuses_what_a_deploy_refuses_and_writes_nothing():
    for spec, path in ((WEB.copy(deploy=WEB.deploy.copy(replicas=11)), "spec.deploy.replicas"),
                       (WEB.copy(ports=[Port(target=80, published=2378)]), "spec.ports.0.published"),
                       (WEB.copy(privileged=True), "spec.privileged"),
                       (WEB.copy(name="bad name"), "spec"),
                       (WEB.copy(image="Not An Image"), "spec.image")):
        store = Store()
        with pytest.raises(Invalid) as e:
            services.create(store, spec, LIMITS)
        assert e.value.path == path and e.value.status == 400
        assert store.services == {}
    missing = WEB.copy(secrets=[FileReference(source="pw", target="/run/secrets/pw")])
    with pytest.raises(Invalid) as e:
        services.create(Store(), missing, LIMITS)
    assert e.value.status == 404 and "secret not found: pw" in str(e.value)
    with pytest.raises(Invalid) as e:
        services.create(Store(published={(8080, "tcp"): "shop_web"}), WEB.copy(), LIMITS)
    assert e.value.status == 409 and e.value.path == "spec.ports.0" and "shop_web" in str(e.value)
    store, _ = created()
    with pytest.raises(Invalid) as e:
        services.create(store, WEB.copy(), LIMITS)
    assert e.value.status == 409 and "exists already" in str(e.value)


def test_a_change_to_the_tasks_is_a_new_spec_version_and_keeps_the_previous_spec():
    store, service = created()
    updated = services.update(store, service, WEB.copy(environment={"A": "2"}), False, LIMITS)
    assert (updated.version, updated.spec_version) == (2, 2)
    assert updated.previous_spec == service.spec and updated.spec.environment == {"A": "2"}


def test_a_change_to_the_service_alone_keeps_its_tasks():
    store, service = created()
    spec = WEB.copy(deploy=WEB.deploy.copy(replicas=3, labels={"team": "a"}))
    updated = services.update(store, service, spec, False, LIMITS)
    assert (updated.version, updated.spec_version, updated.previous_spec) == (2, 1, None)


def test_no_change_writes_nothing_but_force_replaces_the_tasks():
    store, service = created()
    assert services.update(store, service, WEB.copy(), False, LIMITS) is service
    forced = services.update(store, service, WEB.copy(), True, LIMITS)
    assert (forced.version, forced.spec_version, forced.previous_spec) == (2, 2, service.spec)
    assert store.services[service.id] == forced


def test_update_refuses_a_rename_a_network_change_and_a_stale_version():
    store, service = created()
    with pytest.raises(Invalid):
        services.update(store, service, WEB.copy(name="other"), False, LIMITS)
    with pytest.raises(Invalid):
        services.update(store, service, WEB.copy(networks={"back": {}}), False, LIMITS)
    services.update(store, service, WEB.copy(environment={"A": "2"}), False, LIMITS)
    with pytest.raises(Conflict):  # `service` is the version read before that update
        services.update(store, service, WEB.copy(environment={"A": "3"}), False, LIMITS)


def test_rollback_goes_back_to_the_previous_spec_under_the_rollback_config():
    store, service = created()
    with pytest.raises(Invalid) as e:
        services.rollback(store, service)
    assert e.value.status == 409 and "does not have a previous spec" in str(e.value)
    updated = services.update(store, service, WEB.copy(image="nginx:1.26"), False, LIMITS)
    rolled = services.rollback(store, updated)
    assert rolled.spec == service.spec and rolled.previous_spec == updated.spec
    assert (rolled.version, rolled.spec_version) == (3, 3)
    assert store.status[service.id]["mode"] == "rollback" and store.status[service.id]["version"] == 3
    assert services.rollback(store, rolled).spec == updated.spec  # a rollback of a rollback goes forward


def test_a_stack_service_updated_alone_keeps_its_stack_scoped_names():
    spec = ServiceSpec(name="api", image="nginx", secrets=[FileReference(source="pw", target="/run/secrets/pw")])
    service = Service(id="s1", stack="shop", name="shop_api", spec=spec)
    store = Store(service, objects=[("secret", "shop_pw")])
    updated = services.update(store, service, spec.copy(environment={"X": "1"}), False, LIMITS)
    assert updated.stack == "shop" and updated.spec_version == 2
    assert stacks.full_name("shop", "api") == "shop_api" and stacks.full_name("", "api") == "api"
