"""A property-based fuzz run of the API from its own OpenAPI description (schemathesis): what the
description allows, and what it does not, must never get a server error.

The manager under fuzz is a real one, on a Redis of its own, with no node and no worker: what the
fuzz deploys is stored and scheduled but never started, and no job reaches a host (the node given
to `POST /nodes` could be any address, so that operation is left out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from swarmpy.manager import openapi
from swarmpy.settings import ClusterConfig, StateDir
from swarmpy.vault import Vault
from tests.integration.cluster import free_port, wait_for

EXAMPLES = int(os.environ.get("SWARMPY_FUZZ_EXAMPLES", "50"))  # per operation and mode

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    redis_port, api_port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL)
    state = StateDir(root / "state")
    state.path.mkdir()
    state.create_token()
    Vault.create_key(state.key_file)
    state.save(ClusterConfig(redis_url=f"redis://127.0.0.1:{redis_port}/0", api_url=f"http://127.0.0.1:{api_port}",
                             api_port=api_port))
    log = open(root / "manager.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "swarmpy", "manager", "--state-dir", str(state.path),
                                "--listen", "127.0.0.1", "--port", str(api_port), "--no-lb"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{api_port}"
    def healthy() -> bool:
        try:
            return requests.get(url + "/health", timeout=2).ok
        except requests.ConnectionError:
            return False
    try:
        wait_for(healthy, 30, what="the manager under fuzz")
        yield url, state.token(), root / "manager.log"
    finally:
        process.terminate()
        process.wait(10)
        redis.terminate()
        redis.wait(10)


schema = schemathesis.openapi.from_dict(openapi.document())
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])


@schema.exclude(method="POST", path="/nodes").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, manager):
    url, token, log = manager
    if isinstance(case.query, dict) and str(case.query.get("block", "")).isdigit():
        case.query["block"] = min(int(case.query["block"]), 50)  # a long poll is not what is fuzzed
    response = case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                      checks=[not_a_server_error], timeout=30)
    assert "Traceback" not in response.text


def test_the_manager_logged_no_traceback(manager):
    """Run after the fuzz (same module): the manager met nothing it did not expect."""
    url, _, log = manager
    time.sleep(0.5)
    assert "Traceback" not in log.read_text()
