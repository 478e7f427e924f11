"""A changed service is updated slot by slot, as its update_config says."""

from __future__ import annotations

import threading
import time

from tests.integration.cluster import wait_for

STACK = """
services:
  web:
    image: swarmpy/busybox:latest
    command: ["sleep", "{seconds}"]
    stop_grace_period: 1s
    deploy:
      replicas: 4
      update_config:
        parallelism: {parallelism}
        delay: {delay}
        order: {order}
"""


def running_commands(cluster, stack: str) -> list[str]:
    return sorted(c["Command"].split()[1] for c in cluster.listed(stack))


def watch_commands(cluster, stack: str, stop: threading.Event, samples: list) -> None:
    """Sample what runs: (time, commands of the running containers) every 0.1 s."""
    while not stop.is_set():
        samples.append((time.time(), running_commands(cluster, stack)))
        time.sleep(0.1)


def new_only(cluster, stack: str) -> bool:
    return running_commands(cluster, stack) == ["3601"] * 4


def rolling_update(cluster, tmp_path, stack: str, parallelism: int, delay: str, order: str):
    first = cluster.write_stack(tmp_path, STACK.format(seconds=3600, parallelism=parallelism, delay=delay,
                                                       order=order), "v1.yml")
    second = cluster.write_stack(tmp_path, STACK.format(seconds=3601, parallelism=parallelism, delay=delay,
                                                        order=order), "v2.yml")
    cluster.deploy(first, stack)
    samples, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_commands, args=(cluster, stack, stop, samples))
    watcher.start()
    started = time.time()
    try:
        cluster.deploy(second, stack)
    finally:
        stop.set()
        watcher.join()
    return samples, time.time() - started


def test_start_first_never_runs_fewer_than_the_replicas(cluster, tmp_path):
    try:
        samples, _ = rolling_update(cluster, tmp_path, "upd1", 2, "0s", "start-first")
        counts = [len(cmds) for _, cmds in samples]
        assert min(counts) >= 4, counts
        # at most `parallelism` new ones starting, plus the old ones of the previous batch
        # still in their stop grace period (as in Swarm, the next batch does not wait for them)
        assert max(counts) <= 4 + 2 * 2, counts
        # the last batch's old tasks stop after it: its monitor period (5 s), their drain and grace period
        wait_for(lambda: new_only(cluster, "upd1"), 30,
                 what=lambda: f"the old tasks to stop (running: {running_commands(cluster, 'upd1')}, tasks: "
                              f"{[(t['name'], t['state'], t['desired_state']) for t in cluster.tasks('upd1_web')]})")
        status = cluster.json("service", "ls")
        assert next(s for s in status if s["name"] == "upd1_web")["update_status"]["state"] == "completed"
    finally:
        cluster.cli("stack", "rm", "upd1")


def test_stop_first_one_at_a_time_with_a_delay(cluster, tmp_path):
    try:
        samples, took = rolling_update(cluster, tmp_path, "upd2", 1, "1s", "stop-first")
        for _, cmds in samples:
            assert len(cmds) >= 3, cmds  # one slot down at a time
            assert cmds.count("3601") + cmds.count("3600") <= 4
        # each new task waits for the previous one plus 1 s: 4 slots take more than 3 s
        assert took > 3
        wait_for(lambda: new_only(cluster, "upd2"), 10, what="the old tasks to stop")
    finally:
        cluster.cli("stack", "rm", "upd2")
