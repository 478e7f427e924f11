"""Cluster-level commands: `init`, `leave`, and the long-running parts
(`manager`, `worker`, `lb`) that systemd units, the Vagrantfile and `init` run."""

from __future__ import annotations

import logging
import time

import click

from swarmpy.cli.common import console, fail, format_option, print_json, print_table, state_dir_option, with_client
from swarmpy.client import Client, ClientError
from swarmpy.settings import DEFAULT_API_PORT, StateDir


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@click.command("init")
@click.option("--redis", "redis_url", default=None, metavar="URL",
              help="Use this Redis (redis://[:password@]host:port/db) instead of starting one.")
@click.option("--advertise-addr", default="127.0.0.1", show_default=True, metavar="ADDR",
              help="Address other hosts reach this manager (API, Redis) at.")
@state_dir_option
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option("--heartbeat", default=5.0, show_default=True, type=float, help="Seconds between node heartbeats.")
@click.option("--workers", default=2, show_default=True, type=int, help="Job processes of the worker.")
@click.option("--lb/--no-lb", default=True, show_default=True, help="Run the load balancer (routing mesh).")
@click.option("--default-addr-pool", default="10.0.0.0/8", show_default=True, metavar="CIDR",
              help="Where the subnets of networks come from.")
@click.option("--default-addr-pool-mask-length", "subnet_size", default=24, show_default=True, type=int,
              help="Prefix length of each network's subnet.")
@click.option("--systemd", is_flag=True, help="Run the parts under a systemd unit (the host must run systemd).")
@click.option("--http", is_flag=True,
              help="Serve the API over plain HTTP: only with --advertise-addr 127.0.0.1 (a cluster of this "
                   "machine alone); otherwise it is HTTPS with the cluster's own CA.")
def init(redis_url, advertise_addr, state_dir, api_port, heartbeat, workers, lb, default_addr_pool, subnet_size,
         systemd, http):
    """Start a one-node cluster on this machine, in the background.

    The local Docker engine is the first node (role manager). Without --redis,
    swarmpy starts and owns a redis-server (AOF on, under the state dir).
    """
    import ipaddress

    from swarmpy import bootstrap
    state = StateDir(state_dir)
    try:
        pool = ipaddress.IPv4Network(default_addr_pool)
    except ValueError as e:
        fail(f"--default-addr-pool: {e}")
    if not pool.prefixlen <= subnet_size <= 29:
        fail(f"--default-addr-pool-mask-length must be from {pool.prefixlen} to 29")
    try:
        config = bootstrap.init(state, redis_url, advertise_addr, api_port, heartbeat, workers, lb,
                                str(pool), subnet_size, systemd, http)
    except bootstrap.BootstrapError as e:
        fail(str(e))
    client = Client(config.api_url.replace(advertise_addr, "127.0.0.1", 1), state.token(),
                    ca=str(state.ca_file) if state.ca_file.exists() else None)
    deadline = time.time() + 60
    node = None
    while time.time() < deadline:
        try:
            nodes = client.nodes()
            node = next((n for n in nodes if n["status"] == "ready"), None)
            if node:
                break
        except ClientError:
            pass
        if "supervisor" not in bootstrap.running(state):
            break
        time.sleep(0.2)
    if node is None:
        logs = "\n".join(f"--- {n}.log\n{bootstrap.log_tail(state, n)}" for n in ("supervisor", "manager", "worker"))
        bootstrap.stop(state)
        fail(f"the cluster did not come up within 60 s; see {state.run_dir}\n{logs}")
    public_key = bootstrap.ensure_ssh_key(state)
    console.print(f"Swarm initialized: current node ({node['id']}) is now a manager.\n")
    console.print(f"API: {config.api_url}   (token in {state.token_file})")
    console.print(f"Redis: {'embedded, under ' + str(state.redis_dir) if config.embedded_redis else 'external'}\n")
    console.print("To add a host (Docker and sshd on it), authorize this cluster's key for root there:\n")
    console.print(f"    {public_key}\n")
    console.print("then run:\n\n    swarmpy node add NAME --ssh root@HOST --accept-host-key\n")


@click.command("leave")
@state_dir_option
@click.option("--remove-stacks", is_flag=True, help="Remove every stack (and its containers) first.")
@click.option("--force", "-f", is_flag=True, help="Stop even if the stacks cannot be removed.")
def leave(state_dir, remove_stacks, force):
    """Stop what `swarmpy init` started on this machine (alias: down).

    Containers of deployed stacks keep running unless --remove-stacks is given.
    """
    from swarmpy import bootstrap
    state = StateDir(state_dir)
    if not state.exists():
        fail(f"this machine is not in a cluster (no {state.config_file})")
    cluster_id = bootstrap.cluster_id(state)
    if remove_stacks:
        client = Client.from_env(None, str(state.path))
        try:
            stacks = [s["name"] for s in client.stacks()]
            for name in stacks:
                client.remove_stack(name)
            deadline = time.time() + 120
            while time.time() < deadline and any(client.tasks(stack=name) for name in stacks):
                time.sleep(0.3)
            console.print(f"Removed stacks: {', '.join(stacks) or '(none)'}")
        except ClientError as e:
            if not force:
                fail(f"cannot remove the stacks: {e} (use --force to stop anyway)")
    config = state.load()
    stopped = bootstrap.stop(state)
    # its load balancer's rules, even if it was killed (stopped, it took them along)
    if noted := cluster_id or bootstrap.noted_cluster_id(state):
        bootstrap.remove_local_ingress(noted)
    if cluster_id and remove_stacks:  # its stacks are gone: so go its networks and secrets on this machine
        try:
            bootstrap.remove_local_networks(cluster_id)
        except Exception as e:
            console.print(f"warning: cannot remove the cluster's networks from this machine: {e}")
        bootstrap.remove_local_secrets(cluster_id)
    for problem in bootstrap.remove_state(state, config.embedded_redis):
        console.print(f"warning: cannot remove {problem}")
    console.print(f"Node left the cluster (stopped: {', '.join(stopped) or 'nothing was running'}).")


down = click.Command("down", callback=leave.callback, params=leave.params,
                     help="Alias of `leave`: stop what `swarmpy init` started on this machine.")


@click.command("supervise", hidden=True)
@state_dir_option
@click.option("--part", "parts", multiple=True, type=click.Choice(["redis", "sentinel", "manager", "lb", "worker"]),
              help="A part to run and keep running (repeat).")
@click.option("--node-id", default=None, help="The node these parts run on (set by `node promote`).")
@click.option("--local-node", is_flag=True, help="The worker registers this machine's engine as a node.")
@click.option("--log-level", default="warning", show_default=True)
def supervise(state_dir, parts, node_id, local_node, log_level):
    """Run the given parts and restart each when it dies (what `init` and `node promote` start)."""
    from swarmpy import supervisor
    _logging(log_level)
    state = StateDir(state_dir)
    if not state.exists():
        fail(f"no cluster config in {state.path}: run `swarmpy init` first")
    if not parts:
        fail("nothing to supervise: give --part at least once")
    supervisor.run(state, list(parts), node_id, local_node)


@click.command("manager")
@state_dir_option
@click.option("--node-id", default=None, help="The node this manager runs on (set by `node promote`).")
@click.option("--listen", default="0.0.0.0", show_default=True, help="Address the API listens on.")
@click.option("--port", default=None, type=int, help="API port (default: from the state dir).")
@click.option("--lb/--no-lb", default=True, show_default=True, help="Also run the load balancer.")
@click.option("--log-level", default="warning", show_default=True)
def manager(state_dir, node_id, listen, port, lb, log_level):
    """Run a manager in the foreground: API, and the control loops when it leads."""
    from swarmpy.manager import server
    _logging(log_level)
    state = StateDir(state_dir)
    if not state.exists():
        fail(f"no cluster config in {state.path}: run `swarmpy init` first")
    server.run(state, node_id=node_id, host=listen, port=port, lb=lb)


@click.command("manager-loops", hidden=True)
@state_dir_option
@click.option("--manager-id", required=True, help="The manager these loops lead for.")
@click.option("--parent", required=True, type=int, help="Exit when this process (the manager) does.")
@click.option("--log-level", default="warning", show_default=True)
def manager_loops(state_dir, manager_id, parent, log_level):
    """The control loops of a manager, in a process of their own (its manager starts it)."""
    from swarmpy.lifetime import die_with_parent
    from swarmpy.manager import loops
    _logging(log_level)
    die_with_parent(parent)
    loops.run(StateDir(state_dir), manager_id)


@click.command("worker")
@state_dir_option
@click.option("--processes", default=None, type=int, help="Job processes (default: from the state dir).")
@click.option("--threads", default=None, type=int, help="Jobs at once per process (default: from the state dir).")
@click.option("--local-node", is_flag=True, help="Register this machine's Docker engine as a node.")
@click.option("--docker-socket", default="/var/run/docker.sock", show_default=True)
@click.option("--log-level", default="warning", show_default=True)
def worker(state_dir, processes, threads, local_node, docker_socket, log_level):
    """Run a worker in the foreground: job processes and node watchers."""
    from swarmpy.worker import runner
    _logging(log_level)
    state = StateDir(state_dir)
    if not state.exists():
        fail(f"no cluster config in {state.path}: run `swarmpy init` first")
    config = state.load()
    local = {"socket_path": docker_socket, "address": config.advertise_addr} if local_node else None
    runner.run(state, processes or config.workers, threads or config.threads, config.per_node, local,
               sessions=config.sessions)


@click.group("lb", invoke_without_command=True)
@state_dir_option
@click.option("--node-id", default=None, help="The node this load balancer runs on.")
@click.option("--processes", default=1, show_default=True, help="Processes sharing each port (one per core).")
@click.option("--parent", default=None, type=int, hidden=True, help="Exit when this process (a manager) does.")
@click.option("--push-metrics", is_flag=True, help="Push its figures to the store for the leader's /metrics "
              "(a host with no manager, whose /metrics would show them).")
@click.option("--log-level", default="warning", show_default=True)
@click.pass_context
def lb(ctx, state_dir, node_id, processes, parent, push_metrics, log_level):
    """Run a load balancer (the ingress routing mesh) in the foreground; `lb status` shows them all."""
    if ctx.invoked_subcommand is not None:
        return
    from swarmpy.lb import server
    _logging(log_level)
    state = StateDir(state_dir)
    if not state.exists():
        fail(f"no cluster config in {state.path}: run `swarmpy init` first")
    if parent:
        from swarmpy.lifetime import die_with_parent
        die_with_parent(parent)
    server.run(state, node_id=node_id, processes=processes, push_metrics=push_metrics)


@lb.command("status")
@format_option
@with_client
def lb_status(client, fmt):
    """Every load balancer's table: per published port, its endpoints (up, draining, down) and open connections."""
    statuses = client.lb_status()
    if fmt == "json":
        return print_json(statuses)
    rows = []
    for lb_id, status in sorted(statuses.items()):
        for port, entry in status.get("ports", {}).items():
            if entry.get("error"):
                rows.append([lb_id, port, entry["service"], "-", "error: " + entry["error"], ""])
            for e in entry.get("endpoints", []) or ([] if entry.get("error") else [None]):
                if e is None:
                    rows.append([lb_id, port, entry["service"], "(no endpoint)", "", ""])
                else:
                    rows.append([lb_id, port, entry["service"], f"{e['address']}:{e['port']}", e["state"],
                                 e["connections"]])
    print_table(["LOAD BALANCER", "PORT", "SERVICE", "ENDPOINT", "STATE", "CONNECTIONS"], rows)


commands = [init, leave, down, supervise, manager, manager_loops, worker, lb]


@click.group("cluster")
def cluster_group():
    """The cluster's own settings."""


@cluster_group.command("update")
@click.option("--max-replicas", type=click.IntRange(1, 1_000_000), default=None,
              help="The most replicas one service may ask for (a deploy or scale above is refused).")
@click.option("--allow-privileged/--refuse-privileged", default=None,
              help="Let services be privileged, add SYS_ADMIN or ALL, or bind the host's own files "
                   "(/, /etc, the Docker socket, ...); refused by default.")
@with_client
def cluster_update(client, max_replicas, allow_privileged):
    """Change the cluster's settings."""
    settings = client.update_cluster(max_replicas=max_replicas, allow_privileged=allow_privileged)
    click.echo(f"max replicas per service: {settings['max_replicas']}")
    click.echo(f"dangerous options: {'allowed' if settings['allow_privileged'] else 'refused'}")
