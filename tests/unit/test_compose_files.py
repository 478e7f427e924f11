"""Reading YAML as Docker's Go loader does, and env files in the specification's format."""

import pytest

from swarmpy.compose import ComposeError
from swarmpy.compose.files import read_env_file, read_yaml
from swarmpy.compose.markers import Override, Reset


def read(tmp_path, text):
    path = tmp_path / "compose.yml"
    path.write_text(text)
    return read_yaml(str(path), "compose.yml")


def test_scalars_follow_yaml_1_2_like_docker(tmp_path):
    data = read(tmp_path, "a: yes\nb: on\nc: 22:22\nd: 0440\ne: 2001-12-14\nf: 1.5\ng: true\nh: ~\ni:\nj: 0o17\nk: 0x1F\n")
    assert data == {"a": "yes", "b": "on", "c": "22:22", "d": 288, "e": "2001-12-14", "f": 1.5, "g": True,
                    "h": None, "i": None, "j": 15, "k": 31}


def test_keys_are_names_as_written(tmp_path):
    assert read(tmp_path, "TRUE: a\n1: b\nnull: c\n'q': d\n") == {"TRUE": "a", "1": "b", "null": "c", "q": "d"}


def test_anchors_aliases_and_merge_keys(tmp_path):
    data = read(tmp_path, "x-base: &base {image: a, environment: {A: '1'}}\nweb:\n  <<: *base\n  image: b\n")
    assert data["web"] == {"image": "b", "environment": {"A": "1"}}


def test_reset_and_override_tags_become_markers(tmp_path):
    data = read(tmp_path, "a: !reset []\nb: !override {x: 1}\nc: !reset null\n")
    assert data == {"a": Reset([]), "b": Override({"x": 1}), "c": Reset("null")}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\na: 2\n", "invalid YAML: mapping key 'a' already defined at line 1 (line 2, column 1)"),
        ("a: [1\n", "invalid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
        ("[a]: x\n", "invalid YAML: mapping keys must be plain names (line 1, column 1)"),
        ("- a\n", "must be a mapping of top-level keys, not a list"),
        ("a: *nowhere\n", "invalid YAML: found undefined alias 'nowhere' (line 1, column 4)"),
    ],
)
def test_yaml_problems_give_line_and_column(tmp_path, text, message):
    with pytest.raises(ComposeError) as caught:
        read(tmp_path, text)
    assert str(caught.value) == f"compose.yml: (root): {message}"


def test_missing_file(tmp_path):
    with pytest.raises(ComposeError, match=r"^gone.yml: \(root\): file not found$"):
        read_yaml(str(tmp_path / "gone.yml"), "gone.yml")


def test_several_documents_merge_in_order(tmp_path):
    assert read(tmp_path, "a: {x: 1}\n---\na: {y: 2}\n") == {"a": {"x": 1, "y": 2}}


def test_env_file_format(tmp_path):
    path = tmp_path / "app.env"
    path.write_text(
        "# comment\n\nPLAIN=value\nSPACED = padded  \nCOLON: yes\nexport EXPORTED=1\n"
        "DOUBLE=\"a \\\"quoted\\\" \\tvalue # kept\"  # comment\nSINGLE='$LITERAL \\'x\\''\n"
        "COMMENTED=value # comment\nHASH=value#kept\nEMPTY=\nBARE\nREF=${PLAIN}-${OUTSIDE}\n"
        "MULTI=\"line one\nline two\"\n"
    )
    values = read_env_file(str(path), "app.env", {"OUTSIDE": "out"}.get)
    assert values == {
        "PLAIN": "value", "SPACED": "padded", "COLON": "yes", "EXPORTED": "1",
        "DOUBLE": 'a "quoted" \tvalue # kept', "SINGLE": "$LITERAL 'x'", "COMMENTED": "value",
        "HASH": "value#kept", "EMPTY": "", "BARE": None, "REF": "value-out", "MULTI": "line one\nline two",
    }


def test_env_file_raw_format_keeps_values_as_written(tmp_path):
    path = tmp_path / "raw.env"
    path.write_text("A='$X \"y\"'\n")
    assert read_env_file(str(path), "raw.env", {}.get, raw=True) == {"A": "'$X \"y\"'"}


def test_env_file_problems_name_the_line(tmp_path):
    path = tmp_path / "bad.env"
    path.write_text("OK=1\nA=\"never closed\n")
    with pytest.raises(ComposeError, match=r"^bad.env: line 2: A: missing closing \"$"):
        read_env_file(str(path), "bad.env", {}.get)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_files_with_a_byte_order_mark_are_read_as_docker_reads_them(tmp_path, encoding):
    path = tmp_path / "compose.yml"
    text = "services:\n  web:\n    image: nginx  # café\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert read_yaml(str(path), "compose.yml") == {"services": {"web": {"image": "nginx"}}}


def test_a_file_in_no_unicode_encoding_is_a_clear_error(tmp_path):
    path = tmp_path / "compose.yml"
    path.write_bytes(b"services:\n  web:\n    image: caf\xe9\n")
    with pytest.raises(ComposeError, match="not UTF-8 text"):
        read_yaml(str(path), "compose.yml")
