"""From a task and its service spec to the Docker Engine API's create call.

Pure functions: they return plain values (the arguments of the docker SDK's
low-level `create_container` and `create_host_config`), so tests check them
as values and the job only executes them.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any

from swarmpy.model import FileReference, Node, Service, ServiceSpec, Task, scoped_name
from swarmpy.network import names
from swarmpy.network.ipam import mac_of

LABEL_CLUSTER = names.LABEL_CLUSTER  # whose it is: a cluster touches only its own containers
LABEL_TASK = "com.swarmpy.task.id"
LABEL_SERVICE = "com.swarmpy.service.id"
LABEL_SERVICE_NAME = "com.swarmpy.service.name"
LABEL_STACK = "com.swarmpy.stack"
LABEL_NODE = "com.swarmpy.node.id"
LABEL_SLOT = "com.swarmpy.task.slot"

_NS = 1_000_000_000


@dataclass
class ContainerPlan:
    image: str
    name: str
    create: dict[str, Any]  # create_container keyword arguments, without host_config
    host_config: dict[str, Any]  # create_host_config keyword arguments
    files: list[tuple[str, bytes, FileReference]] = field(default_factory=list)  # configs (secrets are mounts)
    connect: list[tuple[str, str]] = field(default_factory=list)  # (network, address): joined after create


def task_labels(task: Task, service: Service, node: Node, cluster_id: str) -> dict[str, str]:
    return {
        LABEL_CLUSTER: cluster_id,
        LABEL_TASK: task.id,
        LABEL_SERVICE: service.id,
        LABEL_SERVICE_NAME: service.name,
        LABEL_STACK: service.stack,
        LABEL_NODE: node.id,
        LABEL_SLOT: str(task.slot if task.slot is not None else ""),
    }


def _mounts(spec: ServiceSpec, stack: str, volumes: dict[str, Any], cluster_id: str = "") -> list[dict[str, Any]]:
    mounts = []
    for m in spec.volumes:
        mount: dict[str, Any] = {"Target": m.target, "Type": m.type, "ReadOnly": m.read_only}
        if m.type == "volume":
            if m.source:
                mount["Source"] = scoped_name(stack, m.source, volumes)
            # a volume the engine makes for it carries its cluster too (engines are shared)
            mount["VolumeOptions"] = {"NoCopy": m.volume_nocopy,
                                      "Labels": {LABEL_STACK: stack, **({LABEL_CLUSTER: cluster_id} if cluster_id else {})}}
        elif m.type == "bind":
            mount["Source"] = m.source
            if m.bind_propagation:
                mount["BindOptions"] = {"Propagation": m.bind_propagation}
        elif m.type == "tmpfs":
            opts = {}
            if m.tmpfs_size:
                opts["SizeBytes"] = m.tmpfs_size
            if m.tmpfs_mode:
                opts["Mode"] = m.tmpfs_mode
            if opts:
                mount["TmpfsOptions"] = opts
        if m.consistency:
            mount["Consistency"] = m.consistency
        mounts.append(mount)
    return mounts


def _healthcheck(spec: ServiceSpec) -> dict[str, Any] | None:
    hc = spec.healthcheck
    if hc is None:
        return None
    if hc.disable:
        return {"test": ["NONE"]}
    out: dict[str, Any] = {"test": hc.test}
    for key in ("interval", "timeout", "start_period"):
        value = getattr(hc, key)
        if value is not None:
            out[key] = int(value * _NS)
    if hc.retries is not None:
        out["retries"] = hc.retries
    return out


def _extra_hosts(entries: list[str]) -> dict[str, str]:
    hosts = {}
    for entry in entries:
        sep = "=" if "=" in entry else ":"
        host, _, ip = entry.partition(sep)
        hosts[host.strip()] = ip.strip()
    return hosts


def container_plan(task: Task, service: Service, node: Node, stack: dict[str, Any] | None = None,
                   files: list[tuple[str, bytes, FileReference]] | None = None,
                   networks: list[tuple[str, str]] = (), nameservers: list[str] | None = None,
                   cluster_id: str = "", secret_mounts: list[dict] = ()) -> ContainerPlan:
    """Everything needed to create the task's container on `node`. `files`: configs, written into
    the container; `secret_mounts`: its secrets, bind-mounted from a tmpfs of the host; `networks`:
    (Docker network name, the task's address there) of each cluster network it joins, the first
    one at create; `nameservers`: what its resolver asks (the cluster's DNS first)."""
    spec = service.spec
    stack = stack or {}
    limits, reservations = spec.deploy.resources.limits, spec.deploy.resources.reservations

    ports = [(p.target, p.protocol) for p in spec.ports]
    bindings: dict[str, Any] = {}
    for p in spec.ports:
        # ingress ports land on an ephemeral host port the mesh forwards to;
        # host-mode ports on their published port of this node only.
        host_port = p.published if p.mode == "host" else None
        bindings.setdefault(f"{p.target}/{p.protocol}", []).append(host_port)

    host_config: dict[str, Any] = {
        "port_bindings": {k: v if len(v) > 1 else v[0] for k, v in bindings.items()},
        "mounts": _mounts(spec, service.stack, stack.get("volumes", {}), cluster_id) + list(secret_mounts),
        "restart_policy": {"Name": "no"},  # the orchestrator replaces dead tasks, Docker must not restart them
        "cap_add": spec.cap_add or None,
        "cap_drop": spec.cap_drop or None,
        "init": spec.init,
        "extra_hosts": _extra_hosts(spec.extra_hosts) or None,
        "dns": nameservers or spec.dns or None,
        "dns_search": spec.dns_search or None,
        "dns_opt": spec.dns_opt or None,
        "sysctls": spec.sysctls or None,
        "ulimits": [{"Name": k, "Soft": u.soft, "Hard": u.hard} for k, u in spec.ulimits.items()] or None,
        "read_only": spec.read_only or None,
        "privileged": spec.privileged or None,
        "nano_cpus": int(limits.cpus * _NS) if limits.cpus else None,
        "mem_limit": limits.memory or None,
        "mem_reservation": reservations.memory or None,
        "pids_limit": limits.pids or None,
    }
    if spec.logging and spec.logging.driver:
        host_config["log_config"] = {"Type": spec.logging.driver, "Config": spec.logging.options}
    host_config = {k: v for k, v in host_config.items() if v is not None}

    env = [f"{k}={v}" for k, v in spec.environment.items() if v is not None]
    create: dict[str, Any] = {
        "command": spec.command,
        "entrypoint": spec.entrypoint,
        "environment": env or None,
        "labels": {**spec.labels, **task_labels(task, service, node, cluster_id)},
        "ports": ports or None,
        "healthcheck": _healthcheck(spec),
        "user": spec.user,
        "working_dir": spec.working_dir,
        "hostname": spec.hostname,
        "stop_signal": spec.stop_signal,
        "stop_timeout": int(round(spec.stop_grace_period)),
        "tty": spec.tty,
        "stdin_open": spec.stdin_open,
    }
    if networks:
        first, address = networks[0]
        host_config["network_mode"] = first
        create["networking_config"] = {"EndpointsConfig": {first: {"IPAMConfig": {"IPv4Address": address}}}}
        create["mac_address"] = mac_of(address)  # the same MAC for the same address, on every engine
    create = {k: v for k, v in create.items() if v is not None}
    return ContainerPlan(image=spec.image, name=task.container_name, create=create, host_config=host_config,
                         files=files or [], connect=list(networks[1:]))


def files_archive(files: list[tuple[str, bytes, FileReference]]) -> bytes:
    """A tar of configs at their targets, extracted at / before the container starts."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        made = set()
        for path, data, ref in files:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode, info.mtime = len(data), ref.mode, now
            info.uid, info.gid = int(ref.uid or 0), int(ref.gid or 0)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def endpoints_from_inspect(spec: ServiceSpec, node_address: str, inspect: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each target port of the running container answers: node address and host port."""
    published = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
    endpoints = []
    for p in spec.ports:
        for binding in published.get(f"{p.target}/{p.protocol}") or []:
            if binding.get("HostIp") in ("", "0.0.0.0"):
                endpoints.append({"target": p.target, "protocol": p.protocol, "address": node_address,
                                  "port": int(binding["HostPort"]), "published": p.published, "mode": p.mode})
                break
    return endpoints
