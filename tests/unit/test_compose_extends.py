"""`extends` (same file and `file:`) and `include`."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.model import Port


def write(tmp_path, **files):
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/").replace("_yml", ".yml").replace("_env", ".env")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "compose.yml")


def test_extends_in_the_same_file_and_from_another(tmp_path):
    main = write(tmp_path, compose_yml="""
services:
  base: {image: base, environment: {TZ: utc, PORT: 80}, ports: ["80"], user: root}
  common: {extends: base, image: common}
  cli:
    extends: {service: common}
    environment: {PORT: 8080}
    ports: ["81"]
  remote:
    extends: {file: lib/common.yml, service: shared}
""", lib__common_yml="""
services:
  shared:
    image: shared
    volumes: ["./data:/data"]
    env_file: shared.env
""", lib__shared_env="FROM_LIB=1\n")
    stack, _ = load_stack([main], environ={})
    cli = stack.services["cli"]
    assert (cli.image, cli.user) == ("common", "root")
    assert cli.environment == {"TZ": "utc", "PORT": "8080"}
    assert cli.ports == [Port(80), Port(81)]
    remote = stack.services["remote"]
    assert remote.volumes[0].source == str(tmp_path / "lib" / "data")  # relative to the extended file
    assert remote.environment == {"FROM_LIB": "1"}


@pytest.mark.parametrize(
    "text, path, message",
    [
        ("services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n", "services.a.extends", "extends cycle: a -> b -> a"),
        ("services:\n  a: {image: x, extends: nowhere}\n", "services.a.extends.service", "service 'nowhere' not found"),
        ("services:\n  a: {image: x, extends: {file: gone.yml, service: b}}\n", "services.a.extends.file", "cannot read gone.yml"),
    ],
)
def test_extends_problems(tmp_path, monkeypatch, text, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError) as caught:
        load_stack([write(tmp_path, compose_yml=text)], environ={})
    assert (path, message) in [(p.path, p.message) for p in caught.value.problems]


def test_include_loads_a_project_of_its_own(tmp_path):
    main = write(tmp_path, compose_yml="""
include:
  - db/compose.yml
services:
  web: {image: "web:${TAG}", networks: [back]}
""", db__compose_yml="""
services:
  db:
    image: "postgres:${PG}"
    networks: [back]
    volumes: [./init:/docker-entrypoint-initdb.d]
networks: {back: {}}
""", db___env="PG=15\nTAG=from-db-dotenv\n")
    stack, _ = load_stack([main], environ={"TAG": "1"})
    assert stack.services["web"].image == "web:1"
    assert stack.services["db"].image == "postgres:15"
    assert stack.services["db"].volumes[0].source == str(tmp_path / "db" / "init")
    assert "back" in stack.networks


def test_include_problems(tmp_path):
    main = write(tmp_path, compose_yml="include: [compose.yml]\nservices: {}\n")
    with pytest.raises(ComposeError, match=r"include.0: include cycle: .*compose.yml -> .*compose.yml"):
        load_stack([main], environ={})
    main = write(tmp_path, compose_yml="include: [other.yml]\nservices: {web: {image: a}}\n", other_yml="services: {web: {image: b}}\n")
    with pytest.raises(ComposeError, match="include.0: services.web is defined both here and in"):
        load_stack([main], environ={})
    main = write(tmp_path, compose_yml="include: [absent.yml]\nservices: {}\n")
    with pytest.raises(ComposeError, match="include.0: file not found: .*absent.yml"):
        load_stack([main], environ={})
