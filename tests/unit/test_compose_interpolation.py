"""`${VAR}` interpolation as the Compose Specification defines it."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.compose.interpolation import InterpolationError, substitute

ENV = {"SET": "value", "EMPTY": "", "PORT": "8080"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$SET", "value"), ("${SET}", "value"), ("x${SET}y", "xvaluey"), ("$SET-suffix", "value-suffix"),
        ("${UNSET:-default}", "default"), ("${EMPTY:-default}", "default"), ("${SET:-default}", "value"),
        ("${UNSET-default}", "default"), ("${EMPTY-default}", ""),
        ("${SET:?msg}", "value"), ("${EMPTY?msg}", ""),
        ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
        ("${UNSET:-${SET}}", "value"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-${SET}-and-more}", "value-and-more"),
        ("${SET-${UNSET?never evaluated}}", "value"),
        ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("cost: 5$$", "cost: 5$"),
        ("$1 and $ alone", "$1 and $ alone"), ("${UNSET}", ""), ("$UNSET", ""),
    ],
)
def test_expressions(text, expected):
    assert substitute(text, ENV.get) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("${UNSET:?tell me}", "required variable UNSET is missing a value: tell me"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("${UNSET:-${NEEDED?inner}}", "required variable NEEDED is missing a value: inner"),
        ("${}", "invalid interpolation format"),
        ("${SET/a/b}", "invalid interpolation format"),
        ("${1ABC}", "invalid interpolation format"),
        ("${SET", "invalid interpolation format"),
    ],
)
def test_errors(text, message):
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$")):
        substitute(text, ENV.get)


def load(tmp_path, text, environ, **others):
    for name, content in others.items():
        (tmp_path / name.replace("_", ".")).write_text(content)
    (tmp_path / "compose.yml").write_text(text)
    return load_stack([str(tmp_path / "compose.yml")], environ=environ)


def test_values_are_interpolated_and_cast_but_keys_are_not(tmp_path):
    stack, _ = load(tmp_path, """
services:
  web:
    image: "nginx:${TAG:-latest}"
    deploy: {replicas: "${N}"}
    labels: {"$SET": "${SET}"}
""", {"N": "3", "SET": "v"})
    web = stack.services["web"]
    assert (web.image, web.deploy.replicas, web.labels) == ("nginx:latest", 3, {"$SET": "v"})


def test_an_unset_variable_where_an_integer_goes_is_a_clear_type_error(tmp_path):
    with pytest.raises(ComposeError) as caught:
        load(tmp_path, "services:\n  web:\n    image: x\n    deploy: {replicas: '${N}'}\n", {})
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/compose.yml: services.web.deploy.replicas: '' is not of type 'integer'"]


def test_an_unset_variable_is_warned_about(tmp_path):
    _, warnings = load(tmp_path, "services:\n  web:\n    image: nginx$TAG\n", {})
    assert warnings == [f"{tmp_path}/compose.yml: services.web.image: variable TAG is not set, substituting an empty string"]


def test_a_required_variable_names_the_key_path_and_message(tmp_path):
    with pytest.raises(ComposeError) as caught:
        load(tmp_path, "services:\n  web:\n    image: x\n    command: ['--email', '${EMAIL:?No EMAIL set}']\n", {})
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == (
        "services.web.command.1", "required variable EMAIL is missing a value: No EMAIL set")


def test_dot_env_beside_the_first_file_fills_what_the_environment_lacks(tmp_path):
    stack, _ = load(tmp_path, "services:\n  web:\n    image: ${IMAGE}:${TAG}\n", {"TAG": "from-environ"},
                    _env="IMAGE=from-dotenv\nTAG=from-dotenv\n")
    assert stack.services["web"].image == "from-dotenv:from-environ"
