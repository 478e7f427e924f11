"""Every file of the shared corpus of real Compose files, against Docker's own loader.

`../shared/corpus/compose/` holds Compose files of public projects and
`ORACLE.tsv`, what `docker stack config` said of each. For each file:

- Docker accepts it: swarmpy accepts it too and agrees with a live
  `docker stack config -c FILE` on service names, image, replicas, mode,
  published and target ports, placement constraints and the environment after
  interpolation (both run with the same fixed environment).
- Docker refuses it only because its old v3 schema predates the Compose
  Specification: swarmpy accepts it (`BEYOND_V3`, each with its reason).
- It is truly wrong for a cluster: swarmpy refuses it with a problem at the
  named key path (`REFUSED`, each with its reason and that path).

The corpus holds the Compose files only, not the secret and config files they
name. A file whose only problems are such missing files is loaded again from a
copy with placeholder files beside it (by both swarmpy and Docker), so its
stack is still compared; that swarmpy refused it first shows the check.

A file in no class, or behaving against its class, fails the test: a new
surprise has to be looked at and classified.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import StackSpec

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "compose"
ENVIRON = {
    "HOME": "/home/corpus",
    # caddy-docker-proxy's tests take the socket mount from the environment
    "DOCKER_SOCKET_PATH": "/var/run/docker.sock",
    "DOCKER_SOCKET_TYPE": "bind",
    # image tags the projects' own .env files set (the corpus holds no .env): unset, `image: x:` is no reference
    "N8N_VERSION": "1.80.0",
    "ELASTICSEARCH_VERSION": "7.16.2",
    "POSTGRESQL_VERSION": "16",
    "TEMPORAL_VERSION": "1.27.2",
    "TEMPORAL_ADMINTOOLS_VERSION": "1.27.2-tctl-1.18.2-cli-1.3.0",
    "TEMPORAL_UI_VERSION": "2.34.0",
}

BEYOND_V3 = {
    "docker__awesome-compose__wasmedge-kafka-mysql_compose.yml": "service `platform` (and `runtime`)",
    "docker__cli__contrib_otel_compose.yaml": "top-level `name`",
    "docker__compose@0d4edbb__tests_fixtures_v3-full_docker-compose.yml": "cpus written as a number",
    "docker__compose__pkg__e2e__fixtures__restart-test__compose-depends-on.yaml": "long `depends_on` with conditions",
    "docker__compose__tests__fixtures__config-profiles__docker-compose.yml": "`profiles`",
    "dockersamples__example-voting-app__docker-compose.images.yml": "long `depends_on` with conditions",
    "n8n-io__n8n-hosting__docker-compose__withPostgres__docker-compose.yml": "long `depends_on` with conditions",
    "traefik__traefik__integration_resources_compose_minimal.yml": "a boolean label value",
}

_NO_IMAGE = "a service with `build` and no image: a cluster runs images (docker stack deploy refuses it too)"
_UNSET = "a required variable is not set"
REFUSED = {
    # services without an image
    "compose-spec__compose-go__loader__testdata__extends__sibling.yaml": (_NO_IMAGE, "services.test.image"),
    "docker__awesome-compose__aspnet-mssql_compose.yaml": (_NO_IMAGE, "services.web.image"),
    "docker__awesome-compose__django__compose.yaml": (_NO_IMAGE, "services.web.image"),
    "docker__awesome-compose__flask-redis__compose.yaml": (_NO_IMAGE, "services.web.image"),
    "docker__awesome-compose__nginx-aspnet-mysql_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__nginx-flask-mongo__compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__nginx-flask-mysql_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__nginx-golang-postgres_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__nginx-nodejs-redis__compose.yaml": (_NO_IMAGE, "services.web1.image"),
    "docker__awesome-compose__react-express-mysql_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__react-java-mysql_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__react-rust-postgres_compose.yaml": (_NO_IMAGE, "services.frontend.image"),
    "docker__awesome-compose__sparkjava-mysql__compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__spring-postgres_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__awesome-compose__traefik-golang_compose.yaml": (_NO_IMAGE, "services.backend.image"),
    "docker__cli__e2e_compose-env.yaml": (_NO_IMAGE, "services.privateregistry.image"),
    "docker__compose__pkg__e2e__fixtures__watch__compose.yaml": (_NO_IMAGE, "services.alpine.image"),
    "deviantony__docker-elk__extensions__metricbeat__metricbeat-compose.yml": (_NO_IMAGE, "services.metricbeat.image"),
    "dockersamples__atsea-sample-shop-app__docker-compose.yml": (_NO_IMAGE, "services.reverse_proxy.image"),
    "dockersamples__docker-swarm-visualizer__docker-compose.yml": (_NO_IMAGE, "services.viz.image"),
    "dockersamples__example-voting-app__docker-compose.yml": (_NO_IMAGE, "services.vote.image"),
    "jpetazzo__container.training__webhooks__admission__compose.yml": (_NO_IMAGE, "services.flask.image"),
    "BretFisher__udemy-docker-mastery__swarm-stack-3__docker-compose.override.yml":
        ("an override file: its services have no image of their own", "services.postgres.image"),
    "BretFisher__udemy-docker-mastery__swarm-stack-3_docker-compose.prod.yml":
        ("an override file: its services have no image of their own", "services.drupal.image"),
    "sixeyed__diamol__ch14_exercises_numbers_prod.yml":
        ("an override file: its services have no image of their own", "services.numbers-api.image"),
    "immich-app__immich__docker__hwaccel.transcoding.yml":
        ("a file of fragments to extend: its services have no image", "services.cpu.image"),
    # required variables not set
    "frappe__frappe_docker__overrides__compose.mariadb-secrets.yaml": (_UNSET, "secrets.db_password.file"),
    "frappe__frappe_docker__overrides__compose.traefik-ssl.yaml": (_UNSET, "services.traefik.command.4"),
    "stefanprodan__swarmprom__docker-compose.traefik.yml": (_UNSET, "services.grafana.deploy.labels.3"),
    "tiangolo__dockerswarm.rocks__docs_portainer.yml": (_UNSET, "services.portainer.deploy.labels.3"),
    "tiangolo__dockerswarm.rocks__docs_swarmpit.yml": (_UNSET, "services.app.deploy.labels.3"),
    "tiangolo__dockerswarm.rocks__docs_traefik-host.yml": (_UNSET, "services.traefik.deploy.labels.3"),
    "tiangolo__dockerswarm.rocks__docs_traefik-v1.yml": (_UNSET, "services.consul-leader.deploy.labels.0"),
    "tiangolo__dockerswarm.rocks__docs_traefik.yml": (_UNSET, "services.traefik.deploy.labels.3"),
    # bad types once the unset variables are empty
    "getsentry__self-hosted__docker-compose.yml":
        ("healthcheck retries from an unset variable: '' is no integer", "services.vroom.healthcheck.retries"),
    "compose-spec__compose-go__schema_using-variables.yaml":
        ("every value from an unset variable: '' is no integer, boolean or duration", "services.foo.deploy.replicas"),
    # missing files
    "vegasbrianc__prometheus__docker-stack.yml": ("its env_file is not in the corpus", "services.grafana.env_file.0"),
    "vegasbrianc__prometheus__docker-traefik-stack.yml": ("its env_file is not in the corpus", "services.grafana.env_file.0"),
    # loader test files that exercise wrong input on purpose
    "compose-spec__compose-go__loader__testdata__extends__base.yaml": ("a service that is null", "services.nil"),
    "compose-spec__compose-go@9dee8f4__loader_full-example.yml":
        ("constraint `node=foo` has no == or != (and more)", "services.foo.deploy.placement.constraints.0"),
    "docker__cli__cli_compose_loader_full-example.yml":
        ("constraint `node=foo` has no == or != (and more)", "services.foo.deploy.placement.constraints.0"),
    "docker__cli__e2e_stack_testdata_stack-with-named-resources.yml":
        ("`volumes: [volume1]` mounts at a relative path", "services.web.volumes.0"),
    "invalid/compose-spec__compose-go__loader__testdata__compose-depends-on-cycle.yaml":
        ("depends_on cycle", "services.service3.depends_on.service1"),
    "invalid/compose-spec__compose-go__loader__testdata__compose-include-cycle.yaml":
        ("includes a file that is not there", "include.0"),
    "invalid/docker__compose__pkg__e2e__fixtures__wrong-composefile__compose.yaml":
        ("unknown key", "services.simple.wrongField"),
    "invalid/docker__compose__tests__fixtures__invalid-composefile__invalid.yml":
        ("unknown top-level keys (a v1 file)", "notaservice"),
    "invalid/docker__compose__tests__fixtures__networks__missing-network.yml":
        ("a service on an undeclared network", "services.web.networks.foo"),
}


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".yml", ".yaml"))


FILES = _corpus_files()
pytestmark = pytest.mark.skipif(not FILES, reason=f"no corpus at {CORPUS} (CI keeps ../shared beside the checkout)")


def _find_docker() -> str | None:
    """A Docker CLI that has `stack config` (Debian's older docker.io lacks it)."""
    for candidate in ("/usr/local/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "stack", "config", "--help"], capture_output=True, env=ENVIRON)
            if probe.returncode == 0:
                return candidate
    return None


@dataclass
class Outcome:
    name: str
    stack: StackSpec | None
    error: ComposeError | None
    first_error: ComposeError | None  # before placeholder files were given
    docker_rc: int | None  # live docker on the file swarmpy loaded last (None: no docker CLI)
    docker_out: dict | None
    docker_original_rc: int | None  # live docker on the corpus file itself
    oracle_rc: int


def _docker(docker: str | None, path: Path) -> tuple[int | None, dict | None]:
    if docker is None:
        return None, None
    run = subprocess.run([docker, "stack", "config", "-c", str(path)], capture_output=True, text=True, env=ENVIRON)
    return run.returncode, (yaml.safe_load(run.stdout) if run.returncode == 0 else None)


def _swarmpy(path: Path) -> tuple[StackSpec | None, ComposeError | None]:
    try:
        return load_stack([str(path)], environ=ENVIRON)[0], None
    except ComposeError as error:
        return None, error


def _only_missing_object_files(error: ComposeError | None) -> bool:
    return error is not None and all(
        p.path.startswith(("secrets.", "configs.")) and p.path.endswith(".file") and p.message.startswith("file not found: ")
        for p in error.problems)


def _with_placeholders(name: str, error: ComposeError, workdir: Path) -> Path:
    """A copy of the file with placeholder files where its secrets and configs point."""
    copy = workdir / Path(name).name
    workdir.mkdir(parents=True)
    shutil.copy(CORPUS / name, copy)
    for problem in error.problems:
        missing = problem.message.removeprefix("file not found: ")
        placeholder = Path(os.path.normpath(workdir / os.path.relpath(missing, CORPUS)))  # same place, copy's side
        placeholder.parent.mkdir(parents=True, exist_ok=True)
        placeholder.write_text("placeholder\n")
    return copy


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    with open(CORPUS / "ORACLE.tsv", newline="") as handle:
        oracle = {row["file"]: int(row["exit_code"]) for row in csv.DictReader(handle, delimiter="\t")}
    docker = _find_docker()
    base = tmp_path_factory.mktemp("corpus")  # made here: mktemp is not safe from several threads

    def one(name: str) -> Outcome:
        path = CORPUS / name
        stack, error = _swarmpy(path)
        first_error, (docker_rc, docker_out) = error, _docker(docker, path)
        original_rc = docker_rc
        if _only_missing_object_files(error):
            path = _with_placeholders(name, error, Path(tempfile.mkdtemp(dir=base)) / "project")
            stack, error = _swarmpy(path)
            docker_rc, docker_out = _docker(docker, path)
        return Outcome(name, stack, error, first_error, docker_rc, docker_out, original_rc, oracle.get(name, -1))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {outcome.name: outcome for outcome in pool.map(one, FILES)}


def _comparable_docker(service: dict) -> dict:
    deploy = service.get("deploy") or {}
    mode = deploy.get("mode", "replicated")
    return {
        "image": service.get("image"),
        "mode": mode,
        "replicas": int(deploy.get("replicas", 1)) if mode in ("replicated", "replicated-job") else None,
        "ports": sorted((int(p["target"]), int(p["published"]) if p.get("published") is not None else None,
                         p.get("protocol", "tcp"), p.get("mode", "ingress")) for p in service.get("ports") or []),
        "constraints": sorted("".join(c.split()) for c in (deploy.get("placement") or {}).get("constraints") or []),
        "environment": {k: (None if v is None else str(v)) for k, v in (service.get("environment") or {}).items()},
        # beyond what the issue asks: commands, mounts and networks agree too
        "command": (service.get("command"), service.get("entrypoint")),
        "volumes": sorted([(v["type"], v.get("source"), v["target"], bool(v.get("read_only")))
                           for v in service.get("volumes") or []]
                          + [("tmpfs", None, entry.split(":")[0], False) for entry in service.get("tmpfs") or []]),
        "networks": sorted(service.get("networks") or []),
    }


def _comparable_swarmpy(service) -> dict:
    mode = service.deploy.mode
    return {
        "image": service.image,
        "mode": mode,
        "replicas": service.deploy.replicas if mode in ("replicated", "replicated-job") else None,
        "ports": sorted((p.target, p.published, p.protocol, p.mode) for p in service.ports),
        "constraints": sorted("".join(str(c).split()) for c in service.deploy.placement.constraints),
        "environment": dict(service.environment),
        "command": (service.command, service.entrypoint),
        "volumes": sorted((m.type, m.source, m.target, m.read_only) for m in service.volumes),
        "networks": sorted(service.networks),
    }


def classify(outcome: Outcome) -> str:
    """agree | beyond | refused; raises AssertionError when the file does not behave as classified."""
    name = outcome.name
    if outcome.docker_original_rc is not None:
        assert outcome.docker_original_rc == outcome.oracle_rc, \
            f"live docker ({outcome.docker_original_rc}) disagrees with ORACLE.tsv ({outcome.oracle_rc})"
    if name in REFUSED:
        reason, path = REFUSED[name]
        assert outcome.error is not None, f"swarmpy accepts a file classified as refused ({reason})"
        paths = [p.path for p in outcome.error.problems]
        assert path in paths, f"expected a problem at {path} ({reason}); got:\n{outcome.error}"
        return "refused"
    assert outcome.error is None, f"swarmpy refuses a file Docker's loader accepts or should:\n{outcome.error}"
    accepted_by_docker = (outcome.docker_rc if outcome.docker_rc is not None else outcome.oracle_rc) == 0
    if name in BEYOND_V3:
        assert not accepted_by_docker, f"Docker now accepts it: move it out of BEYOND_V3 ({BEYOND_V3[name]})"
        return "beyond"
    assert accepted_by_docker, "Docker refuses it and swarmpy accepts it: classify it in BEYOND_V3 or REFUSED"
    if outcome.docker_out is not None:
        theirs = outcome.docker_out.get("services") or {}
        assert sorted(theirs) == sorted(outcome.stack.services), "service names differ"
        for service_name, service in outcome.stack.services.items():
            assert _comparable_swarmpy(service) == _comparable_docker(theirs[service_name]), f"service {service_name}"
    return "agree"


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(outcomes, name):
    classify(outcomes[name])


def test_every_classified_file_is_in_the_corpus():
    missing = (set(BEYOND_V3) | set(REFUSED)) - set(FILES)
    assert not missing, f"classified but not in the corpus: {sorted(missing)}"


def test_corpus_summary(outcomes, capsys):
    counts = {"agree": 0, "beyond": 0, "refused": 0}
    for outcome in outcomes.values():
        try:
            counts[classify(outcome)] += 1
        except AssertionError:
            pass  # reported by its own test_corpus_file
    compared = "agree with docker" if any(o.docker_out for o in outcomes.values()) else "agree with ORACLE.tsv (no docker CLI)"
    line = (f"corpus: {len(outcomes)} files: {counts['agree']} accepted and {compared}, "
            f"{counts['beyond']} accepted beyond docker's v3 schema, {counts['refused']} refused as truly wrong")
    with capsys.disabled():
        print(f"\n{line}")
    assert sum(counts.values()) == len(outcomes), line
