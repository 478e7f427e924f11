#!/usr/bin/env bash
# Install what swarmpy needs on a Debian or Ubuntu machine (as root), start the
# services it talks to (dockerd, redis-server), then, as asked:
#   demo   start a one-node cluster and deploy stacks/web.yml as stack `demo`
#   test   run the whole test suite
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
action="${1:-}"
test_packages=""
if [ "$action" = test ]; then
    # the dashboard's browser test: Debian's Chromium and its driver (no browser download), and
    # certutil to make the test's Chromium trust the cluster's CA
    test_packages="chromium chromium-driver libnss3-tools"
fi

packages="docker.io redis-server openssh-server busybox-static iproute2 iptables procps psmisc curl socat nginx-light prometheus"
missing=""
for p in $packages $test_packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi

echo "setup: installing swarmpy (pip)"
python3 -m pip install -q --disable-pip-version-check -e '.[test,fast]'

# dockerd: started by hand where there is no systemd.
if ! docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd"
    mkdir -p /var/log
    nohup dockerd >/var/log/swarmpy-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/swarmpy-dockerd.log" >&2; exit 1; }
fi

# redis-server: the tests start their own on free ports; this one serves
# `swarmpy init --redis redis://127.0.0.1:6379` and anyone who wants a shared one.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
    echo "setup: starting redis-server"
    redis-server --daemonize yes --port 6379 --bind 127.0.0.1 >/dev/null
fi
echo "setup: ready"

case "$action" in
    demo)
        swarmpy lab image
        if ! swarmpy node ls >/dev/null 2>&1; then
            swarmpy init
        fi
        swarmpy stack deploy -c stacks/web.yml demo
        echo "three requests through the routing mesh, each answered by the container that served it:"
        for _ in 1 2 3; do curl -s --max-time 5 http://127.0.0.1:8080/; done
        ;;
    test)
        python3 -m pytest -ra --durations=20  # the slowest tests, for keeping the suite under 20 minutes
        ;;
    "") ;;
    *) echo "setup: unknown action $action (demo or test)" >&2; exit 2 ;;
esac
