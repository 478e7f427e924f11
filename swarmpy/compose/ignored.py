"""Service keys that mean nothing in a Swarm-style cluster: accepted, with one warning each.

`docker stack deploy` ignores these too ("Ignoring unsupported options"),
or its schema does not know them; swarmpy says why for each, so a user knows
what to do instead. Keys swarmpy does use (cap_add, sysctls, ulimits, ...)
are not listed here.
"""

from __future__ import annotations

_HOST_ONLY = "a single-host container setting that Swarm services do not have"

IGNORED_SERVICE_KEYS: dict[str, str] = {
    "build": "build images before deploying",
    "container_name": "Swarm names each task's container itself",
    "depends_on": "services of a stack start independently; make each wait for what it needs",
    "links": "services on a network reach each other by service name",
    "external_links": "services on a network reach each other by service name",
    "restart": "deploy.restart_policy rules restarts",
    "profiles": "every service of a stack is deployed",
    "pull_policy": "a node pulls or receives an image when it lacks it",
    "network_mode": "services join the stack's networks",
    "expose": "services on a network reach each other's containers on any port",
    "volumes_from": "share a named volume instead",
    "devices": _HOST_ONLY,
    "device_cgroup_rules": _HOST_ONLY,
    "cgroup": _HOST_ONLY,
    "cgroup_parent": _HOST_ONLY,
    "cpu_count": _HOST_ONLY,
    "cpu_percent": _HOST_ONLY,
    "cpu_shares": _HOST_ONLY,
    "cpu_period": _HOST_ONLY,
    "cpu_quota": _HOST_ONLY,
    "cpu_rt_runtime": _HOST_ONLY,
    "cpu_rt_period": _HOST_ONLY,
    "cpuset": _HOST_ONLY,
    "blkio_config": _HOST_ONLY,
    "mem_swappiness": _HOST_ONLY,
    "memswap_limit": _HOST_ONLY,
    "oom_kill_disable": _HOST_ONLY,
    "oom_score_adj": _HOST_ONLY,
    "shm_size": _HOST_ONLY,
    "storage_opt": _HOST_ONLY,
    "security_opt": _HOST_ONLY,
    "userns_mode": _HOST_ONLY,
    "uts": _HOST_ONLY,
    "pid": _HOST_ONLY,
    "ipc": _HOST_ONLY,
    "domainname": _HOST_ONLY,
    "mac_address": _HOST_ONLY,
    "runtime": _HOST_ONLY,
    "gpus": "GPU reservations are not supported by swarmpy",
    "group_add": "not supported by swarmpy yet",
    "credential_spec": "Windows managed service accounts are not supported by swarmpy",
    "annotations": "not supported by swarmpy",
    "attach": "a docker compose log setting",
    "develop": "a docker compose development setting",
    "post_start": "lifecycle hooks are not supported by swarmpy",
    "pre_stop": "lifecycle hooks are not supported by swarmpy",
    "provider": "provider services are run by docker compose only",
    "use_api_socket": "not supported by swarmpy",
    "models": "AI models are run by docker compose only",
}


def ignored_reason(key: str) -> str | None:
    """Why swarmpy ignores this service key, or None when it uses it."""
    return IGNORED_SERVICE_KEYS.get(key)
