"""Property: whatever the files hold, the loader raises nothing but ComposeError.

Mutated corpus files (keys deleted, values replaced or retyped, keys added)
reach deep into conversion; random YAML trees and random text reach the
reader and the schema. Any other exception is a bug a user would see as a
traceback.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmpy.compose import ComposeError, load_stack
from swarmpy.compose.validation import schema

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "compose"
ENVIRON = {"HOME": "/home/fuzz", "SET": "value", "NUMBER": "3", "EMPTY": ""}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[dict]:
    seeds = []
    for path in sorted(CORPUS.rglob("*.y*ml")) if CORPUS.is_dir() else []:
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(document, dict):
            seeds.append(document)
    return seeds


SEEDS = _seeds()
_KEYS = sorted({key for definition in schema()["definitions"].values() for key in definition.get("properties", {})}
               | set(schema()["properties"]))
_SPECIAL = ["${SET}", "${UNSET}", "${UNSET:?needed}", "${NUMBER}", "$$", "${", "${A/b}", "1m30s", "-1s", "512m", "1.5GB",
            "80:80", "8080-8081:80-81/udp", "127.0.0.1::80", "node.role==manager", "node.role=manager", "/abs:/path:ro",
            "./rel:/x", "~", "", ".", "..", "0440", "yes", "global", "replicated-job", "host", "bind", "tmpfs", "CMD",
            "NONE", "x-ext", "default", "0", "-1", "65536", "a=b", "KEY", "true"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20),
    st.sampled_from(_SPECIAL),
)
keys = st.one_of(st.sampled_from(_KEYS), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


def _mutate(document: dict, data) -> dict:
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(document))[1:] or [()]), label="path")
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        operation = data.draw(st.sampled_from(["delete", "replace", "retype", "add"]), label="operation")
        if operation == "delete":
            del parent[last]
        elif operation == "replace":
            parent[last] = data.draw(values, label="value")
        elif operation == "retype":
            old = parent[last]
            parent[last] = [old] if not isinstance(old, list) else {"k": old}
        elif isinstance(parent[last], dict):
            parent[last][data.draw(keys, label="key")] = data.draw(values, label="value")
        else:
            parent[last] = data.draw(scalars, label="scalar")
    return document


def _load(*texts: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        paths = [Path(directory) / f"compose{index}.yml" for index in range(len(texts))]
        for path, text in zip(paths, texts):
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_stack([str(path) for path in paths], environ=ENVIRON)
        except ComposeError as error:
            assert error.problems and all(str(p) for p in error.problems)


@pytest.mark.skipif(not SEEDS, reason=f"no corpus at {CORPUS}")
@SETTINGS
@given(data=st.data())
def test_mutated_corpus_files_raise_only_compose_errors(data):
    document = _mutate(copy.deepcopy(data.draw(st.sampled_from(SEEDS), label="seed")), data)
    _load(yaml.safe_dump(document, allow_unicode=True))


@pytest.mark.skipif(not SEEDS, reason=f"no corpus at {CORPUS}")
@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_merged_mutated_files_raise_only_compose_errors(data):
    base = data.draw(st.sampled_from(SEEDS), label="base")
    other = base if data.draw(st.booleans(), label="same services") else data.draw(st.sampled_from(SEEDS))
    override = _mutate(copy.deepcopy(other), data)
    _load(yaml.safe_dump(base, allow_unicode=True), yaml.safe_dump(override, allow_unicode=True))


@SETTINGS
@given(document=st.dictionaries(st.sampled_from(["services", "networks", "volumes", "secrets", "configs", "name",
                                                  "include", "version", "x-a"]) | keys, values, max_size=5))
def test_random_yaml_trees_raise_only_compose_errors(document):
    _load(yaml.safe_dump(document, allow_unicode=True))


@SETTINGS
@given(services=st.dictionaries(st.sampled_from(["web", "db"]), st.dictionaries(keys, values, max_size=6), max_size=2))
def test_random_services_raise_only_compose_errors(services):
    _load(yaml.safe_dump({"services": services}, allow_unicode=True))


@SETTINGS
@given(text=st.text(max_size=200) | st.sampled_from(["[" * 2000, "a: &a [*a]", "a: !!python/object {}", "\ufeffa: 1",
                                                   "a: !reset\n", "services: !override\n", "- - -", "{{{", "%YAML 9"]))
def test_random_text_raises_only_compose_errors(text):
    _load(text)
