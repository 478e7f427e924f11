"""Secrets and configs reach containers as files, and are never shown; logs from every task."""

from __future__ import annotations

import base64
from pathlib import Path


from swarmpy import bootstrap
from swarmpy.settings import StateDir
from swarmpy.store import replication
from tests.integration.cluster import wait_for

SECRET = "s3cr3t-value-0f-a-test"

STACK = """
services:
  app:
    image: swarmpy/busybox:latest
    command: ["sh", "-c", "echo started $$(hostname); cat /run/secrets/db_password /app.conf; exec sleep 3600"]
    stop_grace_period: 1s
    secrets:
      - db_password
      - source: db_password
        target: again
        mode: 0400
    configs:
      - source: app_conf
        target: /app.conf
    deploy: {replicas: 2}
secrets:
  db_password:
    file: ./password.txt
configs:
  app_conf:
    file: ./app.conf
"""


def test_secrets_and_configs_are_files_in_containers_and_nowhere_else(cluster, tmp_path):
    (tmp_path / "password.txt").write_text(SECRET)
    (tmp_path / "app.conf").write_text("level=debug\n")
    cluster.deploy(cluster.write_stack(tmp_path, STACK), "sec")
    try:
        containers = [c for n in ("node1", "node2", "node3")
                      for c in cluster.engine(n).containers.list(filters={"label": "com.swarmpy.stack=sec"})]
        assert len(containers) == 2
        for c in containers:
            assert c.exec_run(["cat", "/run/secrets/db_password"]).output.decode() == SECRET
            assert c.exec_run(["cat", "/run/secrets/again"]).output.decode() == SECRET
            assert c.exec_run(["stat", "-c", "%a", "/run/secrets/again"]).output.decode().strip() == "400"
            assert c.exec_run(["cat", "/app.conf"]).output.decode() == "level=debug\n"
            assert SECRET not in str(c.attrs)  # not in the container's config or environment
            # from memory: a read-only mount of a tmpfs file, and nothing in the container's own layer
            mounts = c.exec_run(["cat", "/proc/self/mountinfo"]).output.decode().splitlines()
            (mount,) = [m for m in mounts if m.split()[4] == "/run/secrets/db_password"]
            assert " ro," in mount + "," and " - tmpfs " in mount, mount
            layer = (c.attrs.get("GraphDriver") or {}).get("Data") or {}
            assert layer.get("UpperDir") and not _holding(layer["UpperDir"], SECRET)
        cluster_id = bootstrap.cluster_id(StateDir(cluster.state_dir))
        on_hosts = [f for n in cluster.lab.nodes for f in Path(n.dir, "tmpfs", cluster_id).glob("*/*")]
        assert len(on_hosts) == 4 and all(f.read_text() == SECRET for f in on_hosts)  # 2 tasks, 2 files each

        listing = cluster.cli("secret", "ls").stdout + cluster.cli("secret", "inspect", "sec_db_password").stdout
        assert "sec_db_password" in listing and SECRET not in listing
        inspected = cluster.cli("service", "inspect", "sec_app").stdout + cluster.cli("stack", "ps", "sec").stdout
        assert SECRET not in inspected
        # at rest: encrypted, so neither the value nor its base64 is anywhere in Redis
        conn = replication.client(StateDir(cluster.state_dir).load(), decode_responses=False)
        encoded = base64.b64encode(SECRET.encode())
        for key in conn.scan_iter(count=1000):
            kind = conn.type(key)
            values = (conn.hvals(key) if kind == b"hash" else [conn.get(key)] if kind == b"string" else [])
            for v in values:
                assert SECRET.encode() not in (v or b"") and encoded not in (v or b""), key
        for log in (cluster.state_dir / "run").glob("*.log"):
            assert SECRET not in log.read_text(errors="replace")

        # the logs of every task, each line prefixed with the task and its node
        lines = cluster.cli("service", "logs", "sec_app").stdout.splitlines()
        started = [line for line in lines if "started" in line]
        assert len(started) == 2
        for line in started:
            prefix, _, text = line.partition(" | ")
            task, _, node = prefix.partition("@")
            assert task.startswith("sec_app.") and node in ("node1", "node2", "node3")
    finally:
        cluster.cli("stack", "rm", "sec")
    assert "sec_db_password" not in cluster.cli("secret", "ls").stdout
    assert not [f for n in cluster.lab.nodes for f in Path(n.dir, "tmpfs", cluster_id).glob("*/*")]


def _holding(folder: str, text: str) -> list[str]:
    """The files under `folder` that hold `text`."""
    found = []
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink() and text.encode() in path.read_bytes():
            found.append(str(path))
    return found


def test_secret_commands(cluster, tmp_path):
    done = cluster.cli("secret", "create", "loose", "-", input="from stdin")
    assert done.stdout.strip()
    assert "loose" in cluster.cli("secret", "ls").stdout
    again = cluster.cli("secret", "create", "loose", "-", input="other", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    cluster.cli("secret", "rm", "loose")
    assert "loose" not in cluster.cli("secret", "ls").stdout


ROTATING = """
services:
  app:
    image: swarmpy/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    secrets: [pw]
    deploy: {{replicas: 2}}
secrets:
  pw:
    name: rot_pw_{version}
    file: ./{version}.txt
"""


def test_pointing_at_a_new_secret_rolls_every_task(cluster, tmp_path):
    for version in ("v1", "v2"):
        (tmp_path / f"{version}.txt").write_text(f"value-{version}")
    cluster.deploy(cluster.write_stack(tmp_path, ROTATING.format(version="v1"), "v1.yml"), "rot")
    try:
        def values() -> list[str]:
            return sorted(c.exec_run(["cat", "/run/secrets/pw"]).output.decode()
                          for n in ("node1", "node2", "node3")
                          for c in cluster.engine(n).containers.list(filters={"label": "com.swarmpy.stack=rot"}))
        assert values() == ["value-v1"] * 2
        done = cluster.deploy(cluster.write_stack(tmp_path, ROTATING.format(version="v2"), "v2.yml"), "rot")
        assert "Updating service rot_app" in done.stdout
        wait_for(lambda: values() == ["value-v2"] * 2, 30, what=lambda: f"every task on the new secret: {values()}")
    finally:
        cluster.cli("stack", "rm", "rot")
        for version in ("v1", "v2"):
            cluster.cli("secret", "rm", f"rot_pw_{version}", check=False)
