#!/usr/bin/env bash
# On the manager VM: start a cluster and add the workers, once swarmpy has a
# control plane. Until then (`swarmpy init` and `node add` are stubs without
# options) it says so and does nothing; `vagrant provision manager` runs it again.
# Usage: cluster.sh ADVERTISE_ADDR [WORKER_NAME WORKER_ADDR]...
set -euo pipefail
advertise_addr="$1"
shift
key=/etc/swarmpy/id_ed25519

if ! swarmpy init --help 2>/dev/null | grep -q -- --advertise-addr \
    || ! swarmpy node add --help 2>/dev/null | grep -q -- --ssh; then
    echo "cluster: swarmpy init / node add are not implemented yet: no cluster started"
    exit 0
fi

if swarmpy node ls >/dev/null 2>&1; then
    echo "cluster: already running"
else
    swarmpy init --advertise-addr "$advertise_addr"
fi

while [ $# -ge 2 ]; do
    name="$1" addr="$2"
    shift 2
    # A worker is ready once it accepts the key (with parallel providers it may
    # still be provisioning). This probe only runs `true`; swarmpy then checks
    # and records the host key itself.
    for _ in $(seq 1 120); do
        ssh -i "$key" -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$addr" true && break
        sleep 5
    done
    if swarmpy node ls 2>/dev/null | grep -qw "$name"; then
        echo "cluster: $name is in the cluster already"
    else
        swarmpy node add "$name" --ssh "root@$addr" --identity "$key" --accept-host-key
    fi
done
swarmpy node ls
