"""The store on several managers: Redis replicas and Redis Sentinel.

`init` starts the cluster's Redis (the master) and a Sentinel beside it; each
`node promote` adds a replica of the master and a Sentinel on the new
manager's host. Every client (API, control loops, workers, load balancers)
finds the master through the Sentinels it knows (redis-py's Sentinel client),
and follows it when the Sentinels fail over to a replica.

How many managers may be lost is the Sentinels' rule, a majority, as with
Swarm's Raft managers: with N managers the quorum is N // 2 + 1, a failover
needs that many Sentinels to agree, so 3 managers survive the loss of 1, 5 the
loss of 2; 1 or 2 managers survive none (with 2, the survivor cannot tell its
peer's death from a cut link, and does not promote itself).

Replication is asynchronous; the API acknowledges a change only once a
replica has it (`wait_replicated`), so a failover loses no acknowledged write.

An embedded store speaks TLS only, on every port (clients, replication,
Sentinels), with certificates of the cluster's CA on both ends. Each process
that uses it logs in as its own ACL user with only the commands it needs
(`ACL_RULES`); Redis's default user is off. The users and their passwords are in
the config (`redis_users`); the Sentinels have a password of their own.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from urllib.parse import unquote, urlparse

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

MASTER_NAME = "swarmpy"
DEFAULT_SENTINEL_PORT = 26380  # beside a system Sentinel on 26379
DOWN_AFTER_MS = 2000  # a master silent this long is subjectively down
# Also the election's timeout, and a failed election (two Sentinels each voting for itself, which
# happens with two survivors) is tried again after twice this: 2.5 s made such a failover take 10 s.
# Not much less: a promoted replica that has not said it is master within this time is given up.
FAILOVER_TIMEOUT_MS = 2000


# The store's users. Their passwords are in `ClusterConfig.redis_users`, under these names, and
# SENTINEL_ACCESS is the Sentinels' own password (they are asked where the master is).
MANAGER, WORKER, LB, REPLICA, SENTINEL = "manager", "worker", "lb", "replica", "sentinel"
SENTINEL_ACCESS = "sentinel-access"
_DATA = ("resetchannels &* ~swarmpy:* ~rq:* +@all -@admin -@dangerous "
         "+info")  # INFO: replication checks, and rq asks the server's version
ACL_RULES = {
    MANAGER: _DATA,
    WORKER: _DATA,
    # a load balancer (and the supervisor of a host that only balances) reads services, tasks and
    # events, and writes only its status, its figures and that it is alive
    LB: ("resetchannels %R~swarmpy:* ~swarmpy:lb:status:* ~swarmpy:lb:metrics:* ~swarmpy:alive:* +@read "
         "+@connection -@dangerous "
         "+set +del"),
    REPLICA: "+psync +replconf +ping",  # Redis's documented minimum for a replica
    SENTINEL: ("resetchannels &* +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info "
               "+client|setname +client|kill +script|kill"),  # the same for a Sentinel
}


def new_users() -> dict[str, str]:
    """A password for each user of a new store, and for its Sentinels."""
    return {name: secrets.token_urlsafe(24) for name in (*ACL_RULES, SENTINEL_ACCESS)}


def acl_lines(users: dict[str, str]) -> list[str]:
    """redis.conf lines of the store's users (passwords as SHA-256: the file keeps no password of
    them), with the default user off: no one can log in as it. It keeps its rights because Redis
    7.0 replays the AOF's transactions as the default user, and refuses them all without."""
    return ["user default off resetchannels &* ~* +@all"] + [
        f"user {name} on #{hashlib.sha256(users[name].encode()).hexdigest()} {rules}"
        for name, rules in ACL_RULES.items() if name in users]


def tls_lines(tls: dict[str, str]) -> list[str]:
    """TLS only, with the cluster's CA on both ends (`tls`: the ca, cert and key files)."""
    if not tls:
        return []
    return [f"tls-cert-file {tls['cert']}", f"tls-key-file {tls['key']}", f"tls-ca-cert-file {tls['ca']}",
            "tls-auth-clients yes", "tls-replication yes"]


def tls_kwargs(config) -> dict:
    """redis-py's arguments for the store's TLS (none for a plain one)."""
    tls = config.redis_tls
    if not tls:
        return {}
    return {"ssl": True, "ssl_ca_certs": tls["ca"], "ssl_certfile": tls["cert"], "ssl_keyfile": tls["key"],
            "ssl_cert_reqs": "required"}


def credentials(config, user: str) -> dict:
    """Who a process logs in as: its own user, or the URL's (a Redis the cluster does not own)."""
    if config.redis_users:
        if user not in config.redis_users:
            raise KeyError(f"this machine has no password for the store's {user!r} user")
        return {"username": user, "password": config.redis_users[user]}
    return {"password": password_of(config.redis_url)}


def host_user(config) -> str:
    """The user of a process that looks after the host itself (its supervisor, `leave`): the
    manager's on a manager, the load balancer's on a host that only balances."""
    return MANAGER if not config.redis_users or MANAGER in config.redis_users else LB


def sentinel_password(config) -> str | None:
    return config.redis_users.get(SENTINEL_ACCESS) if config.redis_users else password_of(config.redis_url)


def quorum(sentinels: int) -> int:
    return sentinels // 2 + 1


def password_of(url: str) -> str | None:
    password = urlparse(url).password
    return unquote(password) if password else None


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def client(config, user: str = MANAGER, decode_responses: bool = True, **kwargs) -> redis.Redis:
    """A Redis client of the cluster's master, logged in as `user`: through its Sentinels when it
    has some (it follows a failover), else at the config's URL."""
    kwargs.setdefault("health_check_interval", 10)
    kwargs.setdefault("socket_keepalive", True)
    kwargs.setdefault("retry_on_timeout", True)
    kwargs.setdefault("retry", master_retry())
    kwargs.update(credentials(config, user), **tls_kwargs(config))
    if not config.sentinels:
        return url_client(config.redis_url, decode_responses=decode_responses, **kwargs)
    return sentinels(config).master_for(MASTER_NAME, decode_responses=decode_responses, **kwargs)


def url_client(url: str, **kwargs) -> redis.Redis:
    """A client of the Redis at `url`, whose scheme says whether it speaks TLS (`rediss`)."""
    kwargs.pop("ssl", None)
    return redis.Redis.from_url(url, **kwargs)


def master_retry() -> Retry:
    """A call retried a few times within a second (a pooled connection to a master that has just
    gone reconnects to the new one), then it fails: redis-py's default retries for seconds, and a
    request or a control loop would hang that long during a failover."""
    return Retry(ExponentialBackoff(cap=0.4, base=0.05), 3)


def sentinels(config, addresses: list[str] | None = None) -> Sentinel:
    # no retry of one Sentinel: the next one is asked (a dead Sentinel cost ~9 s of retries)
    return Sentinel([address(a) for a in addresses or config.sentinels],
                    sentinel_kwargs={"password": sentinel_password(config), "socket_timeout": 1.0,
                                     "socket_connect_timeout": 1.0, "retry": Retry(NoBackoff(), 0),
                                     **tls_kwargs(config)},
                    socket_timeout=5.0, socket_connect_timeout=2.0)


def redis_port(config) -> int:
    """The port of the cluster's Redis: the config's URL's, which every replica takes too."""
    return urlparse(config.redis_url).port or 6379


def master_address(config) -> tuple[str, int]:
    """Where the master is now, as the Sentinels say (or the config's URL without them)."""
    if not config.sentinels:
        return urlparse(config.redis_url).hostname, redis_port(config)
    return sentinels(config).discover_master(MASTER_NAME)


def redis_conf(port: int, binds: list[str], users: dict[str, str], tls: dict[str, str], data_dir: str,
               log_file: str, announce: str | None = None, replica_of: tuple[str, int] | None = None) -> str:
    """A redis-server of the cluster: AOF on, its users, TLS (the same for replicas: a replica that
    becomes master, and a master that comes back as a replica, need no new settings)."""
    lines = [*_listen(port, tls), f"bind {' '.join(binds)}", "protected-mode no", *acl_lines(users),
             f"masteruser {REPLICA}", f"masterauth {users[REPLICA]}", *tls_lines(tls),
             "appendonly yes", "appendfsync everysec", f"dir {data_dir}",
             "repl-diskless-sync-delay 0",  # a new replica is in sync at once (5 s by default)
             f"logfile {log_file}", "daemonize no"]
    if announce:
        lines.append(f"replica-announce-ip {announce}")
    if replica_of:
        lines.append(f"replicaof {replica_of[0]} {replica_of[1]}")
    return "\n".join(lines) + "\n"


def _listen(port: int, tls: dict[str, str]) -> list[str]:
    return ["port 0", f"tls-port {port}"] if tls else [f"port {port}"]


def sentinel_conf(port: int, binds: list[str], users: dict[str, str], tls: dict[str, str], data_dir: str,
                  log_file: str, announce: str, master: tuple[str, int], sentinel_count: int) -> str:
    """A Sentinel of the cluster (it rewrites this file as it learns: the file must stay writable)."""
    return "\n".join([
        *_listen(port, tls), f"bind {' '.join(binds)}", "protected-mode no",
        f"requirepass {users[SENTINEL_ACCESS]}", *tls_lines(tls),
        f"dir {data_dir}", f"logfile {log_file}", "daemonize no", f"sentinel announce-ip {announce}",
        f"sentinel monitor {MASTER_NAME} {master[0]} {master[1]} {quorum(sentinel_count)}",
        f"sentinel auth-user {MASTER_NAME} {SENTINEL}", f"sentinel auth-pass {MASTER_NAME} {users[SENTINEL]}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {MASTER_NAME} 1", ""])


def sentinel_connection(config, addr: str) -> redis.Redis:
    host, port = address(addr)
    return redis.Redis(host=host, port=port, password=sentinel_password(config), socket_timeout=2.0,
                       socket_connect_timeout=2.0, decode_responses=True, retry=Retry(NoBackoff(), 0),
                       **tls_kwargs(config))


def set_quorum(config, addresses: list[str]) -> list[str]:
    """Every Sentinel's quorum set for their number; returns the ones that did not answer."""
    missed = []
    for addr in addresses:
        try:
            sentinel_connection(config, addr).execute_command("SENTINEL", "SET", MASTER_NAME, "quorum",
                                                              str(quorum(len(addresses))))
        except redis.RedisError:
            missed.append(addr)
    return missed


def forget(config, addresses: list[str]) -> None:
    """Sentinels forget the replicas and Sentinels they knew (one was removed): they find the
    living ones again within seconds."""
    for addr in addresses:
        try:
            sentinel_connection(config, addr).execute_command("SENTINEL", "RESET", MASTER_NAME)
        except redis.RedisError:
            pass


def _knows_replica(sentinel: redis.Redis, replica: tuple[str, int]) -> bool:
    try:
        known = sentinel.sentinel_slaves(MASTER_NAME)
    except redis.RedisError:
        return False
    return any((r["ip"], r["port"]) == replica and not (r["is_sdown"] or r["is_disconnected"])
               and r.get("master-link-status") == "ok" for r in known)


def _in_sync(master: redis.Redis, replica: tuple[str, int]) -> bool:
    try:
        info = master.info("replication")
    except redis.RedisError:
        return False
    return any(isinstance(v, dict) and (v.get("ip"), v.get("port")) == replica and v.get("state") == "online"
               for k, v in info.items() if k.startswith("slave"))


def wait_replica_known(config, addresses: list[str], replica: tuple[str, int], own: str,
                       timeout: float = 15.0) -> list[str]:
    """Wait until every Sentinel knows the new replica, in sync: a Sentinel that knows no replica
    cannot fail over (it aborts with no good replica, and the next try comes seconds later).
    Sentinels learn replicas from the master's INFO every 10 s; the new host's own Sentinel,
    which may have asked before its replica connected, is reset to ask again at once.
    Returns the ones that did not learn it in time."""
    master = client(config, socket_timeout=2.0)
    connections = {addr: sentinel_connection(config, addr) for addr in addresses}
    deadline, reset = time.time() + timeout, False
    waiting = list(addresses)
    while waiting and time.time() < deadline:
        waiting = [s for s in waiting if not _knows_replica(connections[s], replica)]
        if own in waiting and not reset and _in_sync(master, replica):
            forget(config, [own])  # `own` asks the master again, now that its replica is there
            reset = True
        if waiting:
            time.sleep(0.25)
    return waiting


def fail_over_from(config, host: str, addresses: list[str], timeout: float = 20.0) -> bool:
    """If the master is on `host`, make a replica the master (before that host stops); True when
    the master is elsewhere by the end."""
    if master_address(config)[0] != host:
        return True
    for addr in addresses:
        try:
            sentinel_connection(config, addr).execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            break
        except redis.RedisError:
            continue
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if master_address(config)[0] != host:
                return True
        except redis.RedisError:
            pass
        time.sleep(0.2)
    return False


def wait_replicated(connection: redis.Redis, marker_key: str, timeout: float, replicas: int | None = None) -> bool:
    """Wait until a replica has everything written so far (when the master has replicas: as
    counted by the caller's last write, or asked now); False when none confirmed it in time. WAIT
    counts the writes of its own connection only, and a pool's writes go over many: a write of
    its own on the WAIT's connection comes after all of them in the replication stream, so its
    acknowledgement covers them."""
    if replicas is None:
        replicas = int(connection.info("replication").get("connected_slaves", 0))
    if not replicas:
        return True
    pipe = connection.pipeline(transaction=False)
    pipe.incr(marker_key)
    pipe.wait(1, int(timeout * 1000))
    return pipe.execute()[1] >= 1
