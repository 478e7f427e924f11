"""Service volumes (short and long syntax) and tmpfs entries -> Mount."""

import pytest

from swarmpy.compose import ComposeError, load_stack
from swarmpy.compose.mounts import parse_tmpfs, parse_volume
from swarmpy.model import Mount


@pytest.mark.parametrize(
    "entry, mount",
    [
        ("/anon", Mount(type="volume", target="/anon")),
        ("named:/path", Mount(type="volume", source="named", target="/path")),
        ("/abs:/path:rw", Mount(type="bind", source="/abs", target="/path")),
        ("/abs:/path:ro", Mount(type="bind", source="/abs", target="/path", read_only=True)),
        ("/abs:/path:ro,rshared", Mount(type="bind", source="/abs", target="/path", read_only=True, bind_propagation="rshared")),
        ("named:/path:nocopy", Mount(type="volume", source="named", target="/path", volume_nocopy=True)),
        ("/abs:/path:cached", Mount(type="bind", source="/abs", target="/path", consistency="cached")),
        ("/abs:/path:z", Mount(type="bind", source="/abs", target="/path")),
        ({"type": "bind", "source": "/host", "target": "/c", "read_only": True,
          "bind": {"propagation": "slave", "create_host_path": False}},
         Mount(type="bind", source="/host", target="/c", read_only=True, bind_propagation="slave", bind_create_host_path=False)),
        ({"type": "volume", "source": "v", "target": "/v", "volume": {"nocopy": True}},
         Mount(type="volume", source="v", target="/v", volume_nocopy=True)),
        ({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "64m", "mode": 0o1777}},
         Mount(type="tmpfs", target="/t", tmpfs_size=64 << 20, tmpfs_mode=0o1777)),
    ],
)
def test_volume_syntaxes(entry, mount):
    assert parse_volume(entry) == mount


@pytest.mark.parametrize(
    "entry, message",
    [
        ("named:relative", "must be an absolute path"),
        ("/a:/b:bogus", "unknown mode 'bogus'"),
        ("a:/b:ro:extra", "is not SOURCE:TARGET"),
        ({"type": "cluster", "source": "group:g", "target": "/srv"}, "mount type 'cluster' is not supported"),
        ({"type": "bind", "target": "/x"}, "needs a source"),
        ({"type": "tmpfs", "source": "x", "target": "/x"}, "takes no source"),
        ({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "huge"}}, "byte size"),
    ],
)
def test_bad_volumes(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_volume(entry)


def test_tmpfs_entries():
    assert parse_tmpfs("/run") == Mount(type="tmpfs", target="/run")
    assert parse_tmpfs("/data:mode=755,uid=1009,gid=1009,size=1m") == Mount(
        type="tmpfs", target="/data", tmpfs_mode=0o755, tmpfs_size=1 << 20)


def test_relative_and_home_sources_become_absolute_against_the_first_files_directory(tmp_path):
    (tmp_path / "compose.yml").write_text("""
services:
  web:
    image: x
    volumes:
      - ./data:/data:ro
      - ../up:/up
      - ~/cfg:/cfg
      - {type: bind, source: ./long, target: /long}
      - cache:/cache
    tmpfs: /run
volumes: {cache: {}}
""")
    stack, _ = load_stack([str(tmp_path / "compose.yml")], environ={"HOME": "/home/me"})
    mounts = stack.services["web"].volumes
    assert [(m.type, m.source, m.target) for m in mounts] == [
        ("bind", str(tmp_path / "data"), "/data"), ("bind", str(tmp_path.parent / "up"), "/up"),
        ("bind", "/home/me/cfg", "/cfg"), ("bind", str(tmp_path / "long"), "/long"),
        ("volume", "cache", "/cache"), ("tmpfs", None, "/run")]


def test_a_named_volume_must_be_declared(tmp_path):
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: x\n    volumes: ['db:/var/lib/db']\n")
    with pytest.raises(ComposeError) as caught:
        load_stack([str(tmp_path / "compose.yml")], environ={})
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("services.web.volumes.0", "volume 'db' is not declared under top-level volumes")]
