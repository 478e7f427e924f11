"""Service keys other than deploy: environment, env_file, secrets and configs, healthcheck, warnings."""

import base64

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import FileReference, Ulimit


def load(tmp_path, text, environ=None):
    (tmp_path / "compose.yml").write_text(text)
    return load_stack([str(tmp_path / "compose.yml")], environ=environ if environ is not None else {})


def problems(tmp_path, text, environ=None):
    with pytest.raises(ComposeError) as caught:
        load(tmp_path, text, environ)
    return [(p.path, p.message) for p in caught.value.problems]


def test_environment_forms_and_values_as_docker_writes_them(tmp_path):
    stack, _ = load(tmp_path, """
services:
  a:
    image: x
    environment: [PLAIN=v, EQUALS=a=b, FROM_ENV, NOT_SET, EMPTY=]
  b:
    image: x
    environment: {TRUE: true, NUM: 3, FLOAT: 1.0, BIG: 1000000.0, NULL: null, YES: yes, STR: '007'}
""", {"FROM_ENV": "outside", "NULL": "n"})
    assert stack.services["a"].environment == {
        "PLAIN": "v", "EQUALS": "a=b", "FROM_ENV": "outside", "NOT_SET": None, "EMPTY": ""}
    assert stack.services["b"].environment == {
        "TRUE": "true", "NUM": "3", "FLOAT": "1", "BIG": "1e+06", "NULL": "n", "YES": "yes", "STR": "007"}


def test_env_files_come_first_and_environment_wins(tmp_path):
    (tmp_path / "a.env").write_text("A=from-a\nB=from-a\nC=from-a\nSHELL_VAR\n")
    (tmp_path / "b.env").write_text("B=from-b\n")
    stack, _ = load(tmp_path, """
services:
  web:
    image: x
    env_file: [./a.env, {path: ./b.env}, {path: ./optional.env, required: false}]
    environment: {C: from-service}
""", {"SHELL_VAR": "shell"})
    assert stack.services["web"].environment == {"A": "from-a", "B": "from-b", "C": "from-service", "SHELL_VAR": "shell"}


def test_a_missing_env_file_is_a_problem(tmp_path):
    assert problems(tmp_path, "services:\n  web:\n    image: x\n    env_file: missing.env\n") == [
        ("services.web.env_file.0", f"file not found: {tmp_path}/missing.env")]


def test_label_file_and_labels(tmp_path):
    (tmp_path / "app.labels").write_text("team=core\ntier=back\n")
    stack, _ = load(tmp_path, "services:\n  web:\n    image: x\n    label_file: ./app.labels\n    labels: [tier=front, flag]\n")
    assert stack.services["web"].labels == {"team": "core", "tier": "front", "flag": ""}


def test_secrets_and_configs(tmp_path):
    (tmp_path / "token.txt").write_text("s3cret")
    stack, _ = load(tmp_path, """
services:
  web:
    image: x
    secrets:
      - token
      - {source: token, target: renamed, uid: '103', gid: 104, mode: 0440}
      - {source: token, target: /etc/abs, mode: "0400"}
    configs:
      - site
      - {source: site, target: /etc/site.conf, mode: 288}
secrets:
  token: {file: ./token.txt}
  api_key: {environment: API_KEY}
  outside: {external: true, name: prod_outside}
configs:
  site: {content: "port=${PORT}"}
""", {"API_KEY": "k", "PORT": "80"})
    web = stack.services["web"]
    assert web.secrets == [
        FileReference("token", "/run/secrets/token"),
        FileReference("token", "/run/secrets/renamed", "103", "104", 0o440),
        FileReference("token", "/etc/abs", mode=0o400)]
    assert web.configs == [FileReference("site", "/site"), FileReference("site", "/etc/site.conf", mode=0o440)]
    token = stack.secrets["token"]
    assert (token.file, token.data) == (str(tmp_path / "token.txt"), None)  # read at deploy time, never printed
    assert (stack.secrets["api_key"].environment, stack.secrets["api_key"].data) == ("API_KEY", None)
    assert (stack.secrets["outside"].external, stack.secrets["outside"].name) == (True, "prod_outside")
    assert (stack.secrets["token"].external, stack.secrets["token"].name) == (False, None)
    assert base64.b64decode(stack.configs["site"].data) == b"port=80"


@pytest.mark.parametrize(
    "top, path, message",
    [
        ("secrets: {token: {file: ./absent.txt}}", "secrets.token.file", "file not found: {tmp}/absent.txt"),
        ("secrets: {token: {environment: NOT_SET}}", "secrets.token.environment", "variable NOT_SET is not set"),
        ("secrets: {token: {}}", "secrets.token", "needs exactly one source of file, environment or external (found none)"),
        ("secrets: {token: {external: true, file: ./x}}", "secrets.token",
         "needs exactly one source of file, environment or external (found file, external)"),
        ("secrets: {other: {external: true}}", "services.web.secrets.0", "secret 'token' is not declared under top-level secrets"),
    ],
)
def test_secret_problems(tmp_path, top, path, message):
    found = problems(tmp_path, f"services:\n  web:\n    image: x\n    secrets: [token]\n{top}\n")
    assert (path, message.format(tmp=tmp_path)) in found


def test_command_entrypoint_and_healthcheck(tmp_path):
    stack, _ = load(tmp_path, """
services:
  a:
    image: x
    command: sh -c 'echo "a b" $$HOME'
    entrypoint: ["/init", "--"]
    healthcheck: {test: curl -f http://localhost || exit 1, interval: 1m30s, timeout: 10s, retries: 3, start_period: 40s}
  b:
    image: x
    healthcheck: {test: ["CMD", "check"], start_interval: 500ms}
  c:
    image: x
    healthcheck: {disable: true}
""")
    a, b, c = (stack.services[n] for n in "abc")
    assert a.command == ["sh", "-c", 'echo "a b" $HOME'] and a.entrypoint == ["/init", "--"]
    assert a.healthcheck.test == ["CMD-SHELL", "curl -f http://localhost || exit 1"]
    assert (a.healthcheck.interval, a.healthcheck.timeout, a.healthcheck.retries, a.healthcheck.start_period) == (90, 10, 3, 40)
    assert b.healthcheck.test == ["CMD", "check"] and b.healthcheck.start_interval == 0.5
    assert c.healthcheck.test == ["NONE"] and c.healthcheck.disable


def test_other_service_keys(tmp_path):
    stack, _ = load(tmp_path, """
services:
  web:
    image: x
    user: "1000"
    working_dir: /app
    hostname: web
    init: true
    read_only: true
    cap_add: [NET_ADMIN]
    sysctls: {net.core.somaxconn: 1024}
    ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}
    extra_hosts: ["somehost:162.242.195.82", "v6=[::1]"]
    dns: 8.8.8.8
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    networks:
      front: {aliases: [www]}
      back:
networks: {front: {}, back: {driver: overlay, attachable: true}}
""")
    web = stack.services["web"]
    assert (web.user, web.working_dir, web.hostname, web.init, web.read_only) == ("1000", "/app", "web", True, True)
    assert web.sysctls == {"net.core.somaxconn": "1024"}
    assert web.ulimits == {"nproc": Ulimit(65535, 65535), "nofile": Ulimit(20000, 40000)}
    assert web.extra_hosts == ["somehost:162.242.195.82", "v6:::1"] and web.dns == ["8.8.8.8"]
    assert web.logging.options == {"max-size": "10m", "max-file": "3"}
    assert web.networks == {"front": {"aliases": ["www"]}, "back": {}}
    assert stack.networks["back"].driver == "overlay" and stack.networks["back"].attachable


def test_keys_without_meaning_in_a_cluster_are_warned_about_once_each(tmp_path):
    _, warnings = load(tmp_path, """
services:
  web:
    image: x
    build: .
    container_name: web
    depends_on: {db: {condition: service_healthy}}
    restart: always
    links: [db]
  db:
    image: y
    depends_on: []
""")
    file = f"{tmp_path}/compose.yml"
    assert warnings == [
        f"{file}: services.web.build: ignored by swarmpy (build images before deploying)",
        f"{file}: services.web.container_name: ignored by swarmpy (Swarm names each task's container itself)",
        f"{file}: services.web.depends_on: ignored by swarmpy (services of a stack start independently; make each wait for what it needs)",
        f"{file}: services.web.restart: ignored by swarmpy (deploy.restart_policy rules restarts)",
        f"{file}: services.web.links: ignored by swarmpy (services on a network reach each other by service name)",
        f"{file}: services.db.depends_on: ignored by swarmpy (services of a stack start independently; make each wait for what it needs)",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("services:\n  web:\n    build: .\n", ("services.web.image", "missing: swarmpy does not build images: build and push it, then name it here")),
        ("services:\n  web:\n    image: x\n    networks: [back]\n", ("services.web.networks.back", "network 'back' is not declared under top-level networks")),
        ("services:\n  web:\n    image: x\n    depends_on: [db]\n", ("services.web.depends_on.db", "service 'db' is not in the stack")),
        ("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
         ("services.b.depends_on.a", "dependency cycle: a -> b -> a")),
        ("services:\n  web:\n    image: x\n    healthcheck: {test: [curl, x]}\n",
         ("services.web.healthcheck.test.0", "'curl': a test list starts with NONE, CMD or CMD-SHELL")),
        ("services:\n  web:\n    image: x\n    command: \"echo 'unclosed\"\n", ("services.web.command", "No closing quotation")),
        ("networks:\n  ext: {external: true, driver: overlay}\nservices: {}\n",
         ("networks.ext.driver", "an external resource is created elsewhere: only `name` may go with `external`")),
    ],
)
def test_semantic_problems(tmp_path, text, expected):
    assert expected in problems(tmp_path, text)


@pytest.mark.parametrize("image", ["nginx", "nginx:1.25", "library/nginx", "registry:5000/team/app:2",
                                   "localhost/a", "redis@sha256:" + "a" * 64, "Registry.Example.com/x"])
def test_image_references(tmp_path, image):
    assert load(tmp_path, f"services:\n  web:\n    image: '{image}'\n")[0].services["web"].image == image


@pytest.mark.parametrize("image", ["nginx:${TAG}", "Nginx", "a b", "nginx@sha256:short", "/nginx"])
def test_bad_image_references(tmp_path, image):
    ((path, message),) = problems(tmp_path, f"services:\n  web:\n    image: '{image}'\n")
    assert path == "services.web.image" and "is not an image reference" in message


def test_the_implicit_default_network_needs_no_declaration(tmp_path):
    stack, _ = load(tmp_path, "services:\n  web:\n    image: x\n    networks: [default]\n")
    assert stack.services["web"].networks == {"default": {}}


def test_old_external_name_form_is_accepted_with_a_warning(tmp_path):
    stack, warnings = load(tmp_path, "services: {}\nvolumes:\n  data: {external: {name: real}}\n")
    assert (stack.volumes["data"].external, stack.volumes["data"].name) == (True, "real")
    assert warnings == [f"{tmp_path}/compose.yml: volumes.data.external.name: deprecated: write `name:` beside `external: true`"]


def test_an_external_resource_is_named_by_its_key_unless_named(tmp_path):
    stack, _ = load(tmp_path, "services: {}\nnetworks:\n  proxy: {external: true}\n  edge: {external: true, name: real}\n")
    assert (stack.networks["proxy"].name, stack.networks["edge"].name) == ("proxy", "real")


def test_stack_name(tmp_path):
    assert load(tmp_path, "name: shop\nservices: {}\n")[0].name == "shop"
    (tmp_path / "compose.yml").write_text("name: shop\nversion: '3.9'\nservices: {}\n")
    assert load_stack([str(tmp_path / "compose.yml")], environ={}, name="other")[0].name == "other"
    assert load(tmp_path, "services: {}\n")[0].name is None
