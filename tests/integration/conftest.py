"""Integration fixtures. `lab`: one 3-node lab named `test` for the whole run.

It needs root and a running Docker engine and is skipped, with the reason,
without them. Tests that use it get the `lab` marker.
"""

import os
import shutil
import subprocess

import pytest

from swarmpy import lab as swarmpy_lab

# Under pytest-xdist each worker gets a lab and a cluster of its own (labs run side by side).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
LAB_NAME = f"test-{WORKER}" if WORKER else "test"
# Test files whose stacks publish fixed ports run one after another in one worker: every
# cluster's load balancer listens on all of this machine's addresses.
SHARED_PORTS = {"test_mesh", "test_example_stacks", "test_api", "test_dashboard"}


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("dockerd", "docker", "/usr/sbin/sshd", "nsenter", "iptables"):
        if not shutil.which(tool):
            return f"the lab needs {tool} (run scripts/setup.sh)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "the lab needs this machine's Docker engine running (run scripts/setup.sh)"
    return None


@pytest.fixture(scope="session")
def lab_machine():
    """Skips the test, with the reason, where the lab cannot run."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab(lab_machine):
    """A 3-node lab for the whole test run: a stale one is removed first, and it always goes at the end."""
    swarmpy_lab.down(LAB_NAME)
    try:
        yield swarmpy_lab.up(name=LAB_NAME, nodes=3)
    finally:
        swarmpy_lab.down(LAB_NAME)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if {"lab", "lab_machine"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
        module = item.path.stem
        # a file's tests stay together (their module fixtures are made once), ports-sharing files too
        item.add_marker(pytest.mark.xdist_group("ports" if module in SHARED_PORTS else module))


@pytest.fixture(scope="session")
def cluster(lab, tmp_path_factory):
    """A swarmpy cluster for the whole run: the manager on this machine, the lab's 3 nodes joined."""
    from tests.integration.cluster import Cluster

    c = Cluster(lab, tmp_path_factory.mktemp("swarmpy-state"))
    try:
        c.start()
        yield c
    finally:
        c.stop(keep_logs=tmp_path_factory.getbasetemp() / "swarmpy-logs")
