"""What goes into the lab's images made from Debian's own binaries: `swarmpy/nginx:latest`,
`swarmpy/redis:latest`, `swarmpy/socat:latest` (a UDP echo server), `swarmpy/wrk:latest` (a load
generator) and `swarmpy/prometheus:latest` (stacks/monitoring.yml). Plain values; `swarmpy.lab.images` builds them.

Each image holds the binaries, the libraries `ldd` names for them, its own
small configuration and nothing else: no shell, no package manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageRecipe:
    tag: str
    package: str  # the Debian package that provides the binaries: named when one is missing
    binaries: tuple[str, ...]  # absolute paths, copied to the same path with their libraries
    command: tuple[str, ...]  # the image's CMD
    files: dict[str, str] = field(default_factory=dict)  # path in the image -> its text (configuration)
    dirs: dict[str, str] = field(default_factory=dict)  # empty directories besides /tmp: path -> owner
    users: tuple[str, ...] = ()  # /etc/passwd lines besides root; each user gets a group of its name and gid
    user: str | None = None  # who the command runs as (USER); None: root
    env: dict[str, str] = field(default_factory=lambda: {"PATH": PATH})

    def passwd(self) -> list[str]:
        return ["root:x:0:0:root:/root:/nonexistent", *self.users]

    def groups(self) -> list[str]:
        """One group per user, named like it, with its gid: `user nobody;` in nginx finds group nobody."""
        return [f"{name}:x:{gid}:" for name, _, _, gid, *_ in (line.split(":") for line in self.passwd())]

    def uid_gid(self, user: str) -> tuple[int, int]:
        for name, _, uid, gid, *_ in (line.split(":") for line in self.passwd()):
            if name == user:
                return int(uid), int(gid)
        raise ValueError(f"{self.tag}: no user {user!r} in its /etc/passwd lines")


NOBODY = "nobody:x:65534:65534:nobody:/nonexistent:/nonexistent"

# Debian's nginx is built with temp paths under /var/lib/nginx and its pid under /run:
# all of them move to /tmp, the one writable directory the image has.
NGINX_CONF = r"""# swarmpy/nginx:latest: answers every request with the container's hostname, as fast as it can.
user nobody;
worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log stderr warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 65s;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;

    server {
        listen 80 default_server;
        default_type text/plain;
        location / {
            return 200 "$hostname\n";
        }
    }
}
"""

NGINX = ImageRecipe(
    tag="swarmpy/nginx:latest",
    package="nginx-light",
    binaries=("/usr/sbin/nginx",),
    command=("nginx", "-c", "/etc/nginx/nginx.conf"),
    files={
        "/etc/nginx/nginx.conf": NGINX_CONF,
        "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    },
    users=(NOBODY,),  # the master binds port 80 as root, its worker runs as nobody
)

REDIS_CONF = """# swarmpy/redis:latest's own configuration. A stack replaces it with a config at
# /etc/redis/redis.conf, and gives it a password (`requirepass`), e.g. by
# `include /run/secrets/<a secret holding the requirepass line>`.
bind * -::*
port 6379
# No password here, so protected mode would refuse every client from outside the container.
protected-mode no
daemonize no
supervised no
logfile ""
dir /data
"""

REDIS = ImageRecipe(
    tag="swarmpy/redis:latest",
    package="redis-server",
    binaries=("/usr/bin/redis-server",),
    command=("redis-server", "/etc/redis/redis.conf"),
    files={"/etc/redis/redis.conf": REDIS_CONF},
    dirs={"/data": "redis"},
    users=("redis:x:999:999:redis:/data:/nonexistent", NOBODY),
    user="redis",
)

# A UDP echo server: busybox has no UDP server, and the mesh's UDP relay needs a real one to test.
SOCAT = ImageRecipe(
    tag="swarmpy/socat:latest",
    package="socat",
    binaries=("/usr/bin/socat",),
    command=("socat", "UDP4-RECVFROM:9000,fork", "PIPE"),
    users=(NOBODY,),
    user="nobody",
)

# A load generator to run inside a task (the overlay benchmark): wrk, and busybox for a shell,
# `sleep` to keep the task alive and `nslookup`.
WRK = ImageRecipe(
    tag="swarmpy/wrk:latest",
    package="wrk",
    binaries=("/usr/bin/wrk", "/bin/busybox"),
    command=("/bin/busybox", "sleep", "2147483647"),
    files={"/etc/nsswitch.conf": "hosts: files dns\n", "/etc/services": "http 80/tcp\nhttps 443/tcp\n"},
)

PROMETHEUS_CONF = """# swarmpy/prometheus:latest's own configuration: it scrapes itself. A stack replaces it with a
# config at /etc/prometheus/prometheus.yml (stacks/monitoring.yml scrapes the managers).
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:9090"]
"""

# Prometheus from Debian's package: one Go binary (libc only). Its HTTP API and /metrics; not its web
# pages, whose assets Debian links from packages of a few hundred MB.
PROMETHEUS = ImageRecipe(
    tag="swarmpy/prometheus:latest",
    package="prometheus",
    binaries=("/usr/bin/prometheus",),
    command=("prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
             "--web.listen-address=:9090"),
    files={"/etc/prometheus/prometheus.yml": PROMETHEUS_CONF, "/etc/nsswitch.conf": "hosts: files dns\n"},
    dirs={"/prometheus": "nobody"},
    users=(NOBODY,),
    user="nobody",
)

RECIPES = {"nginx": NGINX, "redis": REDIS, "socat": SOCAT, "wrk": WRK, "prometheus": PROMETHEUS}
