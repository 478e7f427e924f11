"""The lab's image recipes as values: what `ldd` says, the users they make, the tree they lay out."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from swarmpy.lab.images import PRESETS, build_recipe, libraries_of, make_root, parse_ldd
from swarmpy.lab.recipes import NGINX, PROMETHEUS, REDIS, ImageRecipe
from swarmpy.lab.shell import LabError

LDD_NGINX = """\
\tlinux-vdso.so.1 (0x00007ffd7b5f2000)
\tlibcrypt.so.1 => /lib/x86_64-linux-gnu/libcrypt.so.1 (0x00007f6a0c0f0000)
\tlibpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f6a0c056000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6a0be75000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f6a0c2a9000)
"""


def test_ldd_gives_every_library_and_the_loader_but_not_the_vdso():
    assert parse_ldd(LDD_NGINX) == [
        "/lib/x86_64-linux-gnu/libcrypt.so.1",
        "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]


def test_ldd_names_each_library_once():
    twice = "\tlibc.so.6 => /lib/libc.so.6 (0x1)\n\tlibc.so.6 => /lib/libc.so.6 (0x2)\n"
    assert parse_ldd(twice) == ["/lib/libc.so.6"]


def test_a_library_ldd_cannot_find_stops_the_build():
    with pytest.raises(LabError, match="libgone.so.1 is not on this machine"):
        parse_ldd("\tlibgone.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n")


def test_each_user_gets_a_group_of_its_name():
    assert REDIS.groups() == ["root:x:0:", "redis:x:999:", "nobody:x:65534:"]
    assert REDIS.uid_gid("redis") == (999, 999)
    assert "user nobody;" in NGINX.files["/etc/nginx/nginx.conf"] and "nobody:x:65534:" in NGINX.groups()
    with pytest.raises(ValueError, match="no user 'www'"):
        NGINX.uid_gid("www")


def test_presets_and_the_configuration_they_carry():
    assert PRESETS == {"busybox": "swarmpy/busybox:latest", "nginx": "swarmpy/nginx:latest",
                       "redis": "swarmpy/redis:latest", "socat": "swarmpy/socat:latest", "wrk": "swarmpy/wrk:latest",
                       "prometheus": "swarmpy/prometheus:latest"}
    nginx_conf = NGINX.files["/etc/nginx/nginx.conf"]
    for line in ("daemon off;", "access_log off;", "keepalive_requests 100000;", "listen 80",
                 'return 200 "$hostname\\n";'):
        assert line in nginx_conf
    redis_conf = REDIS.files[REDIS.command[-1]]
    for line in ("bind * -::*", "protected-mode no", "daemonize no", "dir /data"):
        assert line in redis_conf.splitlines()
    assert "--storage.tsdb.path=/prometheus" in PROMETHEUS.command and PROMETHEUS.dirs == {"/prometheus": "nobody"}


def test_a_missing_binary_names_the_debian_package():
    absent = dataclasses.replace(NGINX, binaries=("/nonexistent/sbin/nginx",))
    with pytest.raises(LabError, match="apt-get install -y nginx-light"):
        build_recipe(absent, force=True)


def test_the_root_holds_the_binary_its_libraries_as_files_and_the_users(tmp_path):
    recipe = ImageRecipe(tag="swarmpy/test-ls:latest", package="coreutils", binaries=("/bin/ls",),
                         command=("ls",), files={"/etc/motd": "hello\n"}, dirs={"/srv": "root"})
    root = str(tmp_path / "root")
    make_root(recipe, root)
    for path in ("/bin/ls", *libraries_of("/bin/ls")):
        assert stat.S_ISREG(os.lstat(root + path).st_mode), path  # copied, never a symlink
    assert any("ld-linux" in path for path in libraries_of("/bin/ls"))
    assert open(f"{root}/etc/passwd").read() == "root:x:0:0:root:/root:/nonexistent\n"
    assert open(f"{root}/etc/group").read() == "root:x:0:\n"
    assert open(f"{root}/etc/motd").read() == "hello\n"
    assert stat.S_IMODE(os.stat(f"{root}/tmp").st_mode) == 0o1777
    assert os.path.isdir(f"{root}/srv")
