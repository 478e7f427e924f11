"""Updates that fail, on the lab: a new image that cannot be had (the task is rejected), a command
that exits, a healthcheck that fails; each with failure_action pause and rollback, in one stack.
The deploy exits non-zero naming each reason; the services end on one version on the engines;
scale, a new deploy and rm still work afterwards, and rm leaves no container."""

from __future__ import annotations

import json
import subprocess
import time

from tests.integration.cluster import wait_for

STACK = "updfail"
CASES = ("image", "crash", "sick")
ACTIONS = ("pause", "rollback")
# the shell ends at once on SIGTERM (a bare `sleep` as PID 1 ignores it and waits for the SIGKILL)
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def service(case: str, action: str, version: int, broken: bool) -> str:
    image, command, health = "swarmpy/busybox:latest", COMMAND, ["CMD", "true"]
    if broken and case == "image":
        image = "swarmpy/does-not-exist:1"
    if broken and case == "crash":
        command = ["sh", "-c", "sleep 0.5; exit 3"]
    if broken and case == "sick":
        health = ["CMD", "false"]
    return f"""
  {case}_{action}:
    image: {image}
    command: {command}
    environment: {{VERSION: "{version}"}}
    stop_grace_period: 1s
    healthcheck: {{test: {health}, interval: 1s, timeout: 5s, retries: 3}}
    deploy:
      replicas: 2
      restart_policy: {{delay: 1s}}
      update_config: {{parallelism: 1, monitor: 2s, failure_action: {action}}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
"""


def stack(version: int, broken: bool = False) -> str:
    return "services:" + "".join(service(c, a, version, broken) for c in CASES for a in ACTIONS)


def running(cluster) -> dict[str, list[tuple[str, str]]]:
    """service -> (image, VERSION) of each running container, as the engines say."""
    out: dict[str, list[tuple[str, str]]] = {}
    for c in cluster.listed(STACK):
        info = cluster.engine(c["node"]).api.inspect_container(c["Id"])
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        name = c["Labels"]["com.swarmpy.service.name"].removeprefix(f"{STACK}_")
        out.setdefault(name, []).append((info["Config"]["Image"], env.get("VERSION", "")))
    return {k: sorted(v) for k, v in out.items()}


V1 = ("swarmpy/busybox:latest", "1")


def running_versions(cluster, service: str) -> list[int]:
    """The spec versions of the service's tasks that run, as `service ps` says."""
    return sorted(t["spec_version"] for t in cluster.json("service", "ps", f"{STACK}_{service}")
                  if t["state"] == "running" and t["desired_state"] == "running")


def test_failed_updates_pause_or_roll_back_and_never_wedge(cluster, tmp_path):
    v1 = cluster.write_stack(tmp_path, stack(1), "v1.yml")
    v2 = cluster.write_stack(tmp_path, stack(2, broken=True), "v2.yml")
    v3 = cluster.write_stack(tmp_path, stack(3), "v3.yml")
    try:
        cluster.deploy(v1, STACK)

        started = time.time()
        try:
            done = cluster.cli("stack", "deploy", "-c", str(v2), STACK, check=False, timeout=240)
        except subprocess.TimeoutExpired as e:  # say what the services were doing
            raise AssertionError(f"the deploy did not settle: {e.stdout!r}\n" + "\n".join(
                cluster.cli("service", "ps", f"{STACK}_{c}_{a}").stdout + json.dumps(
                    [s for s in cluster.json("service", "ls") if s["name"] == f"{STACK}_{c}_{a}"])
                for c in CASES for a in ACTIONS)) from e
        assert done.returncode != 0, done.stdout
        assert time.time() - started < 120, "the deploy said so as soon as the updates settled"
        err = " ".join(done.stderr.split())  # rich may wrap long lines
        for case, what in (("image", "No such image: swarmpy/does-not-exist:1"), ("crash", "non-zero exit (3)"),
                           ("sick", "unhealthy container")):
            assert f"service {STACK}_{case}_pause: update paused due to failure or early termination of task" in err
            assert f"service {STACK}_{case}_rollback: update rolled back due to failure or early termination" in err
            assert err.count(what) == 2, (what, err)

        # rolled back: both slots run v1 again; paused: the second slot still runs v1, no slot runs v2
        # (its first slot keeps retrying v2 by its restart policy, as in Swarm)
        def settled():
            now = running(cluster)
            return all(now.get(f"{c}_rollback") == [V1, V1] and [v for v in now.get(f"{c}_pause", []) if v[1] != "2"]
                       == [V1] for c in CASES)
        wait_for(settled, 15, what=lambda: f"one version per service ({running(cluster)})")
        # the rollback replaced only the slot the update had reached (spec version 2, rolled back as 3):
        # the other still runs its task of the first deploy, as in Swarm
        for case in CASES:
            assert running_versions(cluster, f"{case}_rollback") == [1, 3], \
                cluster.cli("service", "ps", f"{STACK}_{case}_rollback").stdout
        statuses = {s["name"]: s["update_status"] for s in cluster.json("service", "ls")}
        for case in CASES:
            assert statuses[f"{STACK}_{case}_pause"]["state"] == "paused"
            assert statuses[f"{STACK}_{case}_rollback"]["state"] == "rollback_completed"

        # scale proceeds on every one of them (a paused service does not make it wait)
        scale = cluster.cli("service", "scale", *(f"{STACK}_{c}_{a}=3" for c in CASES for a in ACTIONS), timeout=120)
        assert "stays paused" in scale.stdout
        wait_for(lambda: all(running(cluster).get(f"{c}_rollback") == [V1] * 3 for c in CASES), 60,
                 what=lambda: f"3 v1 tasks of each rolled back service ({running(cluster)})")

        # a new deploy resumes the paused updates: every service ends on v3, 2 tasks each
        cluster.deploy(v3, STACK)
        wait_for(lambda: running(cluster) == {f"{c}_{a}": [("swarmpy/busybox:latest", "3")] * 2
                                              for c in CASES for a in ACTIONS}, 60,
                 what=lambda: f"v3 everywhere ({running(cluster)})")
    finally:
        rm = cluster.cli("stack", "rm", STACK, check=False, timeout=180)
    assert rm.returncode == 0, rm.stderr
    assert cluster.listed(STACK, running_only=False) == []
