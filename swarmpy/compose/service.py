"""One merged service mapping -> ServiceSpec (everything but `deploy`, see deploy.py)."""

from __future__ import annotations

import os
import shlex
from typing import Any

from swarmpy.compose.deploy import convert_deploy
from swarmpy.compose.errors import ComposeError
from swarmpy.compose.files import read_env_file
from swarmpy.compose.ignored import ignored_reason
from swarmpy.model.images import check_image
from swarmpy.compose.mounts import parse_tmpfs, parse_volume
from swarmpy.compose.ports import parse_port
from swarmpy.compose.project import Project, display_name
from swarmpy.compose.scalars import scalar_text, stringify_values
from swarmpy.compose.units import parse_duration
from swarmpy.model import FileReference, Healthcheck, Logging, ServiceSpec, Ulimit

# keys whose value goes as it is into the ServiceSpec field of the same name
_PLAIN = ("stop_signal", "user", "working_dir", "hostname", "init", "isolation", "read_only", "tty",
          "stdin_open", "privileged", "cap_add", "cap_drop", "dns", "dns_search", "dns_opt")
_HEALTH_TESTS = ("NONE", "CMD", "CMD-SHELL")
_REFERENCE_DEFAULTS = {"secrets": "/run/secrets/", "configs": "/"}


def convert_service(project: Project, name: str, raw: dict) -> ServiceSpec:
    where = ("services", name)
    for key in raw:
        reason = ignored_reason(key)
        if reason:
            project.warning(where + (key,), f"ignored by swarmpy ({reason})")
    image = raw.get("image")
    if not image:
        why = "swarmpy does not build images: build and push it, then name it here" if "build" in raw else \
            "every service needs an image"
        project.problem(where + ("image",), f"missing: {why}")
    else:
        project.parsed(where + ("image",), check_image, image)
    spec = ServiceSpec(name=name, image=image or "")
    for key in _PLAIN:
        if raw.get(key) is not None:
            setattr(spec, key, raw[key])
    spec.command = _command(project, where + ("command",), raw.get("command"))
    spec.entrypoint = _command(project, where + ("entrypoint",), raw.get("entrypoint"))
    spec.environment = _environment(project, where, raw)
    spec.labels = {**_key_value_files(project, where + ("label_file",), raw.get("label_file") or []),
                   **stringify_values(raw.get("labels") or {})}
    spec.ports = _ports(project, where + ("ports",), raw.get("ports") or [])
    spec.volumes = _mounts(project, where, raw)
    spec.secrets = _references(project, where, "secrets", raw.get("secrets") or [])
    spec.configs = _references(project, where, "configs", raw.get("configs") or [])
    spec.networks = {net: _strip_extensions(options or {}) for net, options in (raw.get("networks") or {}).items()}
    spec.healthcheck = _healthcheck(project, where + ("healthcheck",), raw.get("healthcheck"))
    if "stop_grace_period" in raw:
        spec.stop_grace_period = project.parsed(where + ("stop_grace_period",), parse_duration,
                                                raw["stop_grace_period"], spec.stop_grace_period)
    spec.extra_hosts = [_host_entry(entry) for entry in raw.get("extra_hosts") or []]
    spec.sysctls = stringify_values(raw.get("sysctls") or {})
    spec.ulimits = {key: Ulimit(v, v) if isinstance(v, int) else Ulimit(v["soft"], v["hard"])
                    for key, v in (raw.get("ulimits") or {}).items()}
    if raw.get("logging"):
        spec.logging = Logging(driver=raw["logging"].get("driver"),
                               options=stringify_values(raw["logging"].get("options") or {}))
    spec.deploy = convert_deploy(project, where, raw)
    return spec


def _command(project: Project, at: tuple, value: Any) -> list[str] | None:
    """A string is split like a shell would (as `docker stack config` does); a list is kept."""
    if value is None or isinstance(value, list):
        return value
    return project.parsed(at, shlex.split, value)


def _environment(project: Project, where: tuple, raw: dict) -> dict[str, str | None]:
    """env_file values first, then `environment:` (which wins, even with an empty value).

    A variable named without a value takes the value of the environment the
    stack is loaded in, or stays None (unset) when that lacks it too.
    """
    environment = _key_value_files(project, where + ("env_file",), raw.get("env_file") or [])
    for key, value in (raw.get("environment") or {}).items():
        environment[key] = project.lookup(key) if value is None else scalar_text(value)
    return environment


def _key_value_files(project: Project, at: tuple, entries: list) -> dict[str, Any]:
    """env_file / label_file entries read in order; a later file wins."""
    values: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        spec = {"path": entry} if isinstance(entry, str) else entry
        path = spec["path"]
        if not os.path.isfile(path):
            if spec.get("required", True):
                project.problem(at + (index,), f"file not found: {path}")
            continue
        try:
            found = read_env_file(path, display_name(path), project.lookup, raw=spec.get("format") == "raw")
        except ComposeError as error:
            project.problems.extend(error.problems)
            continue
        for key, value in found.items():
            value = project.lookup(key) if value is None else value
            if value is not None:
                values[key] = value
    return values


def _ports(project: Project, at: tuple, entries: list) -> list:
    ports = []
    for index, entry in enumerate(entries):
        parsed = project.parsed(at + (index,), parse_port, entry)
        if parsed is None:
            continue
        found, host_ip = parsed
        if host_ip:
            project.warning(at + (index,), f"host IP {host_ip} ignored: swarmpy publishes ports on every address")
        ports.extend(found)
    return ports


def _mounts(project: Project, where: tuple, raw: dict) -> list:
    mounts = []
    for index, entry in enumerate(raw.get("volumes") or []):
        mount = project.parsed(where + ("volumes", index), parse_volume, entry)
        if mount is not None:
            mounts.append(mount)
        if isinstance(entry, dict) and (entry.get("volume") or {}).get("subpath"):
            project.warning(where + ("volumes", index, "volume", "subpath"), "ignored by swarmpy (not supported)")
    for index, entry in enumerate(raw.get("tmpfs") or []):
        mount = project.parsed(where + ("tmpfs", index), parse_tmpfs, entry)
        if mount is not None:
            mounts.append(mount)
    return mounts


def _references(project: Project, where: tuple, kind: str, entries: list) -> list[FileReference]:
    """Secrets/configs a service uses, with Swarm's default target and mode."""
    references = []
    for index, entry in enumerate(entries):
        spec = {"source": entry} if isinstance(entry, str) else entry
        source = spec["source"]
        reference = FileReference(source=source, target=reference_target(kind, source, spec.get("target")))
        for key in ("uid", "gid"):
            if spec.get(key) is not None:
                setattr(reference, key, str(spec[key]))
        if spec.get("mode") is not None:
            reference.mode = project.parsed(where + (kind, index, "mode"), file_mode, spec["mode"], reference.mode)
        references.append(reference)
    return references


def reference_target(kind: str, source: str, target: str | None) -> str:
    """Where a secret or config (`kind`: secrets or configs) lands: Swarm's default folder unless
    the target is absolute."""
    target = target or source
    if not target.startswith("/") and not (len(target) > 1 and target[1] == ":"):
        target = _REFERENCE_DEFAULTS[kind] + target
    return target


def file_mode(value: Any) -> int:
    """YAML's 0440 arrives as the int 288 (kept); a string is read as octal ("0440", "440")."""
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip(), 8)
    except ValueError:
        raise ValueError(f"{value!r} is not a file mode (octal, like 0440)") from None


def _healthcheck(project: Project, at: tuple, raw: dict | None) -> Healthcheck | None:
    if raw is None:
        return None
    check = Healthcheck()
    test = raw.get("test")
    if isinstance(test, str):
        check.test = ["CMD-SHELL", test]
    elif isinstance(test, list):
        if test and test[0] not in _HEALTH_TESTS:
            project.problem(at + ("test", 0), f"{test[0]!r}: a test list starts with NONE, CMD or CMD-SHELL")
        check.test = list(test)
    if raw.get("disable"):
        check.disable, check.test = True, ["NONE"]
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if raw.get(key) is not None:
            setattr(check, key, project.parsed(at + (key,), parse_duration, raw[key]))
    check.retries = raw.get("retries")
    return check


def _host_entry(entry: str) -> str:
    """"host=ip" (the specification's preferred form) or "host:ip" -> "host:ip" (Swarm's)."""
    host, sep, address = entry.partition("=")
    if not sep:
        return entry
    return f"{host}:{address.strip('[]')}"


def _strip_extensions(options: dict) -> dict:
    return {k: v for k, v in options.items() if not str(k).startswith("x-")}
