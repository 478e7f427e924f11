"""Docker's `service create | update` flags -> a ServiceSpec.

Each flag means what it means to `docker service create | update`, with the
same defaults (the model's, which are Swarm's). The syntaxes are Docker's:
`-p 8080:80`, `-p published=8080,target=80,protocol=udp,mode=host`, `--mount
type=volume,source=x,target=/data,readonly`, `--secret name` or `--secret
source=x,target=y,mode=0400`, durations like `1m30s`, sizes like `512M`. The
values are parsed by the Compose loader's own parsers (ports, mounts, units,
placement), so a flag and a file mean the same. A bad value is a click usage
error naming the flag, before anything is sent.

`create_spec` makes a new spec; `update_spec` changes only what its flags
name, as `docker service update` does: removals (`--*-rm`) first, then
additions (`--*-add`), then the single values.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from collections.abc import Callable
from typing import Any

import click

from swarmpy.compose.mounts import parse_volume
from swarmpy.compose.placement import parse_constraint, parse_preference
from swarmpy.compose.ports import parse_port
from swarmpy.compose.service import file_mode, reference_target
from swarmpy.compose.units import parse_bytes, parse_cpus, parse_duration
from swarmpy.model import FileReference, Healthcheck, Mount, Port, Preference, ServiceSpec
from swarmpy.model.images import check_image

# ---------------------------------------------------------------- one value of a flag


def _pairs(text: str, what: str) -> dict[str, str]:
    """Docker's `key=value,key=value` (a bare key is `key=true`, as `readonly` is)."""
    out = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not key:
            raise ValueError(f"{text!r} is not a {what} (key=value,...)")
        out[key.strip().lower()] = value.strip() if sep else "true"
    return out


def _boolean(value: str, key: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"{key}={value!r}: not true or false")


def parse_publish(text: str) -> list[Port]:
    """`8080:80`, `8080:80/udp`, `80`, or `published=8080,target=80,protocol=udp,mode=host`."""
    if "=" in text:
        pairs = _pairs(text, "port")
        unknown = set(pairs) - {"published", "target", "protocol", "mode"}
        if unknown:
            raise ValueError(f"{text!r}: unknown key {sorted(unknown)[0]!r} (published, target, protocol, mode)")
        ports, _ = parse_port(pairs)
    else:
        ports, host_ip = parse_port(text)
        if host_ip:
            raise ValueError(f"{text!r}: a service publishes on every address (no host IP)")
    return ports


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro", "consistency",
               "bind-propagation", "volume-nocopy", "tmpfs-size", "tmpfs-mode"}


def parse_mount(text: str) -> Mount:
    """`type=volume,source=x,target=/data,readonly` (Docker's `--mount`; type defaults to volume)."""
    pairs = _pairs(text, "mount")
    unknown = set(pairs) - _MOUNT_KEYS
    if unknown:
        raise ValueError(f"{text!r}: unknown key {sorted(unknown)[0]!r}")
    entry: dict[str, Any] = {"type": pairs.get("type", "volume"),
                             "source": pairs.get("source") or pairs.get("src"),
                             "target": pairs.get("target") or pairs.get("destination") or pairs.get("dst")}
    readonly = pairs.get("readonly", pairs.get("ro"))
    entry["read_only"] = _boolean(readonly, "readonly") if readonly is not None else False
    entry["consistency"] = pairs.get("consistency")
    if "bind-propagation" in pairs:
        entry["bind"] = {"propagation": pairs["bind-propagation"]}
    if "volume-nocopy" in pairs:
        entry["volume"] = {"nocopy": _boolean(pairs["volume-nocopy"], "volume-nocopy")}
    tmpfs = {key: pairs[f"tmpfs-{key}"] for key in ("size", "mode") if f"tmpfs-{key}" in pairs}
    if tmpfs:
        entry["tmpfs"] = tmpfs
    return parse_volume(entry)


def parse_reference(kind: str, text: str) -> FileReference:
    """`--secret NAME` or `--secret source=NAME,target=PATH,uid=0,gid=0,mode=0400` (configs alike)."""
    if "=" not in text:
        return FileReference(source=text, target=reference_target(kind + "s", text, None))
    pairs = _pairs(text, kind)
    unknown = set(pairs) - {"source", "src", "target", "uid", "gid", "mode"}
    if unknown:
        raise ValueError(f"{text!r}: unknown key {sorted(unknown)[0]!r} (source, target, uid, gid, mode)")
    source = pairs.get("source") or pairs.get("src")
    if not source:
        raise ValueError(f"{text!r}: source is required")
    ref = FileReference(source=source, target=reference_target(kind + "s", source, pairs.get("target")))
    ref.uid, ref.gid = pairs.get("uid", ref.uid), pairs.get("gid", ref.gid)
    if "mode" in pairs:
        ref.mode = file_mode(pairs["mode"])
    return ref


def parse_env(text: str) -> tuple[str, str | None]:
    """`KEY=value`; a bare `KEY` takes this shell's value (unset when it has none), as Docker does."""
    key, sep, value = text.partition("=")
    if not key:
        raise ValueError(f"{text!r} is not KEY=value")
    return key, value if sep else os.environ.get(key)


def parse_label(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key:
        raise ValueError(f"{text!r} is not KEY=value")
    return key, value


def parse_placement_pref(text: str) -> Preference:
    """`spread=node.labels.zone`: Swarm's one kind of preference."""
    kind, sep, value = text.partition("=")
    if not sep or kind.strip() != "spread":
        raise ValueError(f"{text!r} is not a placement preference (spread=node.labels.<key>)")
    return parse_preference(value)


def _image(text: str) -> str:
    check_image(text)
    return text


class Parsed(click.ParamType):
    """A flag's value through one of the parsers above: a ValueError is click's usage error."""

    def __init__(self, name: str, parse: Callable[[str], Any]):
        self.name, self.parse = name, parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


PORTS = Parsed("port", parse_publish)
MOUNT = Parsed("mount", parse_mount)
SECRET = Parsed("secret", lambda text: parse_reference("secret", text))
CONFIG = Parsed("config", lambda text: parse_reference("config", text))
ENV = Parsed("env", parse_env)
LABEL = Parsed("label", parse_label)
CONSTRAINT = Parsed("constraint", parse_constraint)
PREFERENCE = Parsed("pref", parse_placement_pref)
DURATION = Parsed("duration", parse_duration)
BYTES = Parsed("bytes", parse_bytes)
CPUS = Parsed("decimal", parse_cpus)
IMAGE = Parsed("image", _image)
ARGS = Parsed("command", shlex.split)
MODES = click.Choice(["replicated", "global", "replicated-job", "global-job"])
ORDERS = click.Choice(["stop-first", "start-first"])

# ---------------------------------------------------------------- the flags

# flags with one value: option name -> (click type, the spec field it sets)
SINGLE: dict[str, tuple[Any, tuple[str, ...], str]] = {
    "replicas": (click.IntRange(0), ("deploy", "replicas"), "Number of tasks."),
    "limit-cpu": (CPUS, ("deploy", "resources", "limits", "cpus"), "Limit CPUs."),
    "limit-memory": (BYTES, ("deploy", "resources", "limits", "memory"), "Limit memory (512M, 1G)."),
    "reserve-cpu": (CPUS, ("deploy", "resources", "reservations", "cpus"), "Reserve CPUs."),
    "reserve-memory": (BYTES, ("deploy", "resources", "reservations", "memory"), "Reserve memory."),
    "restart-condition": (click.Choice(["none", "on-failure", "any"]), ("deploy", "restart_policy", "condition"),
                          "Restart when condition is met (default any)."),
    "restart-delay": (DURATION, ("deploy", "restart_policy", "delay"), "Delay between restart attempts (default 5s)."),
    "restart-max-attempts": (click.IntRange(0), ("deploy", "restart_policy", "max_attempts"),
                             "Maximum number of restarts before giving up."),
    "restart-window": (DURATION, ("deploy", "restart_policy", "window"), "Window used to evaluate the restart policy."),
    "health-interval": (DURATION, ("healthcheck", "interval"), "Time between running the check."),
    "health-timeout": (DURATION, ("healthcheck", "timeout"), "Maximum time to allow one check to run."),
    "health-retries": (click.IntRange(0), ("healthcheck", "retries"),
                       "Consecutive failures needed to report unhealthy."),
    "health-start-period": (DURATION, ("healthcheck", "start_period"),
                            "Start period for the container to initialize before counting retries."),
    **{f"{kind}-{key}": item for kind, done, config in (("update", "updated", "update_config"),
                                                         ("rollback", "rolled back", "rollback_config"))
       for key, item in {
           "parallelism": (click.IntRange(0), ("deploy", config, "parallelism"),
                           f"Maximum number of tasks {done} simultaneously (0: all at once)."),
           "delay": (DURATION, ("deploy", config, "delay"), f"Delay between {kind}s."),
           "failure-action": (click.Choice(["pause", "continue", "rollback"] if kind == "update"
                                           else ["pause", "continue"]), ("deploy", config, "failure_action"),
                              f"Action on {kind} failure (default pause)."),
           "monitor": (DURATION, ("deploy", config, "monitor"),
                       f"Duration after each task {kind} to monitor for failure (default 5s)."),
           "max-failure-ratio": (click.FloatRange(0, 1), ("deploy", config, "max_failure_ratio"),
                                 f"Failure rate to tolerate during the {kind}."),
           "order": (ORDERS, ("deploy", config, "order"), f"{kind.capitalize()} order (default stop-first)."),
       }.items()},
    "stop-grace-period": (DURATION, ("stop_grace_period",), "Time to wait before force killing a container."),
    "stop-signal": (str, ("stop_signal",), "Signal to stop the container."),
    "workdir": (str, ("working_dir",), "Working directory inside the container."),
    "user": (str, ("user",), "Username or UID."),
    "hostname": (str, ("hostname",), "Container hostname."),
}

# flags given once per value, as create names them (update adds `-add` / `-rm`)
LISTS = {"publish": (PORTS, "Publish a port as a node port (8080:80, or published=8080,target=80)."),
         "env": (ENV, "Set environment variables."),
         "label": (LABEL, "Service labels."),
         "container-label": (LABEL, "Container labels."),
         "constraint": (CONSTRAINT, "Placement constraints (node.role==manager)."),
         "placement-pref": (PREFERENCE, "Placement preference (spread=node.labels.zone)."),
         "secret": (SECRET, "Specify secrets to expose to the service."),
         "config": (CONFIG, "Specify configurations to expose to the service."),
         "mount": (MOUNT, "Attach a filesystem mount to the service.")}
SHORT = {"publish": "-p", "env": "-e", "label": "-l"}
# what `--X-rm` takes: the key an entry is removed by
REMOVE_BY = {"publish": (click.STRING, "target port"), "env": (click.STRING, "name"),
             "label": (click.STRING, "key"), "container-label": (click.STRING, "key"),
             "constraint": (CONSTRAINT, "value"), "placement-pref": (PREFERENCE, "value"),
             "secret": (click.STRING, "name"), "config": (click.STRING, "name"), "mount": (click.STRING, "target")}


def _dest(name: str) -> str:
    return name.replace("-", "_")


def _single_options(f):
    for name, (kind, _, help_text) in reversed(SINGLE.items()):
        f = click.option(f"--{name}", _dest(name), type=kind, default=None, help=help_text)(f)
    f = click.option("--health-cmd", default=None, help="Command to run to check health.")(f)
    f = click.option("--no-healthcheck", is_flag=True, default=False,
                     help="Disable any container-specified HEALTHCHECK.")(f)
    f = click.option("--timeout", default=300.0, show_default=True, type=float,
                     help="Seconds to wait for the service to converge.")(f)
    return click.option("--detach", "-d", is_flag=True,
                        help="Exit immediately instead of waiting for the service to converge.")(f)


def create_options(f):
    """The flags of `service create`."""
    for name, (kind, help_text) in reversed(LISTS.items()):
        decls = [f"--{name}", *([SHORT[name]] if name in SHORT else []), _dest(name)]
        f = click.option(*decls, type=kind, multiple=True, help=help_text)(f)
    f = click.option("--network", "networks", multiple=True,
                     help="Network attachments (made with `network create`).")(f)
    f = click.option("--mode", type=MODES, default="replicated", show_default=True, help="Service mode.")(f)
    f = click.option("--name", default=None, help="Service name.")(f)
    return _single_options(f)


def update_options(f):
    """The flags of `service update`."""
    for name, (kind, help_text) in reversed(LISTS.items()):
        kind_rm, by = REMOVE_BY[name]
        f = click.option(f"--{name}-rm", _dest(f"{name}_rm"), type=kind_rm, multiple=True,
                         help=f"Remove a --{name} entry, by its {by}.")(f)
        f = click.option(f"--{name}-add", _dest(f"{name}_add"), type=kind, multiple=True,
                         help=f"Add or update: {help_text[0].lower()}{help_text[1:]}")(f)
    f = click.option("--image", type=IMAGE, default=None, help="Service image tag.")(f)
    f = click.option("--args", type=ARGS, default=None, help="Service command args.")(f)
    f = click.option("--force", is_flag=True, help="Force update even if no changes require it.")(f)
    return _single_options(f)


# ---------------------------------------------------------------- flags -> spec


def _set(spec: ServiceSpec, path: tuple[str, ...], value: Any) -> None:
    target = spec
    for key in path[:-1]:
        if getattr(target, key) is None and key == "healthcheck":  # --health-interval on a service with none
            spec.healthcheck = Healthcheck()
        target = getattr(target, key)
    setattr(target, path[-1], value)


def _apply_single(spec: ServiceSpec, opts: dict[str, Any]) -> None:
    if opts.get("no_healthcheck"):
        if opts.get("health_cmd") or any(opts.get(_dest(n)) is not None for n in SINGLE if n.startswith("health-")):
            raise click.UsageError("--no-healthcheck conflicts with --health-* options")
        spec.healthcheck = Healthcheck(test=["NONE"], disable=True)
    if opts.get("health_cmd"):
        _set(spec, ("healthcheck", "test"), ["CMD-SHELL", opts["health_cmd"]])
        spec.healthcheck.disable = False
    for name, (_, path, _) in SINGLE.items():
        if opts.get(_dest(name)) is not None:
            _set(spec, path, opts[_dest(name)])


def _port_key(p: Port) -> tuple:
    return (p.published, p.protocol) if p.published else (p.target, p.protocol, p.mode)


def _removed_port(p: Port, text: str) -> bool:
    """`--publish-rm 80` or `80/udp` or `8080:80`: by its target port, as Docker takes it."""
    target, _, protocol = text.partition(":")[2].partition("/") if ":" in text else text.partition("/")
    return str(p.target) == target.strip() and p.protocol == (protocol.strip() or p.protocol)


def _merge(current: list, added: list, key: Callable[[Any], Any]) -> list:
    """`--X-add`: an entry with the same key is replaced, the others appended."""
    keys = {key(a) for a in added}
    return [c for c in current if key(c) not in keys] + list(added)


def create_spec(image: str, command: tuple[str, ...], opts: dict[str, Any]) -> ServiceSpec:
    """`service create [OPTIONS] IMAGE [COMMAND] [ARG...]`."""
    name = opts.get("name") or default_name(image)
    spec = ServiceSpec(name=name, image=image, command=list(command) or None)
    spec.deploy.mode = opts.get("mode") or "replicated"
    spec.ports = [p for ports in opts.get("publish", ()) for p in ports]
    spec.environment = dict(opts.get("env", ()))
    spec.deploy.labels = dict(opts.get("label", ()))
    spec.labels = dict(opts.get("container_label", ()))
    spec.deploy.placement.constraints = list(opts.get("constraint", ()))
    spec.deploy.placement.preferences = list(opts.get("placement_pref", ()))
    spec.secrets, spec.configs = list(opts.get("secret", ())), list(opts.get("config", ()))
    spec.volumes = list(opts.get("mount", ()))
    spec.networks = {n: {} for n in opts.get("networks", ())}
    _apply_single(spec, opts)
    return spec


def update_spec(spec: ServiceSpec, opts: dict[str, Any]) -> ServiceSpec:
    """The service's spec with what the flags of `service update` name changed, nothing else."""
    spec = ServiceSpec.from_dict(spec.to_dict())  # the caller's stays as it was
    placement = spec.deploy.placement
    get = lambda key: opts.get(key) or ()  # noqa: E731 - a flag given no times
    spec.ports = _merge([p for p in spec.ports if not any(_removed_port(p, t) for t in get("publish_rm"))],
                        [p for ports in get("publish_add") for p in ports], _port_key)
    for field, add, rm in (("environment", "env_add", "env_rm"), ("labels", "container_label_add",
                                                                 "container_label_rm")):
        values = {k: v for k, v in getattr(spec, field).items() if k not in get(rm)}
        setattr(spec, field, {**values, **dict(get(add))})
    spec.deploy.labels = {**{k: v for k, v in spec.deploy.labels.items() if k not in get("label_rm")},
                          **dict(get("label_add"))}
    placement.constraints = _merge([c for c in placement.constraints if c not in get("constraint_rm")],
                                   get("constraint_add"), str)
    placement.preferences = _merge([p for p in placement.preferences if p not in get("placement_pref_rm")],
                                   get("placement_pref_add"), lambda p: p.spread)
    for kind in ("secret", "config"):
        kept = [r for r in getattr(spec, kind + "s") if r.source not in get(f"{kind}_rm")]
        setattr(spec, kind + "s", _merge(kept, get(f"{kind}_add"), lambda r: r.target))
    spec.volumes = _merge([m for m in spec.volumes if m.target not in get("mount_rm")], get("mount_add"),
                          lambda m: m.target)
    if opts.get("image"):
        spec.image = opts["image"]
    if opts.get("args") is not None:
        spec.command = list(opts["args"]) or None
    _apply_single(spec, opts)
    return spec


def default_name(image: str) -> str:
    """A name for a service made without `--name` (Docker picks a random one too)."""
    base = re.sub(r"[^a-zA-Z0-9_.-]", "", image.split("@")[0].rpartition("/")[2].partition(":")[0]) or "service"
    return f"{base.lstrip('_.-') or 'service'}_{secrets.token_hex(3)}"
