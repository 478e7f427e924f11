#!/usr/bin/env bash
# Provision one VM of the Vagrant lab, as root: Docker, sshd, swarmpy from the
# synced checkout, and the manager's key (authorized on every VM; the private
# half kept on the manager only). Safe to run again. Usage: provision.sh manager|worker
set -euo pipefail
role="$1"
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq docker.io openssh-server redis-server busybox-static iproute2 iptables \
    procps psmisc curl python3-venv >/dev/null
systemctl enable --now docker ssh

# swarmpy in a venv of its own; /usr/local/bin is on the PATH of SSH sessions,
# so a manager reaching this VM over SSH finds it (`swarmpy node promote`).
[ -x /opt/swarmpy/bin/pip ] || python3 -m venv /opt/swarmpy
/opt/swarmpy/bin/pip install -q --disable-pip-version-check -e /vagrant
ln -sf /opt/swarmpy/bin/swarmpy /usr/local/bin/swarmpy

install -d -m 700 /root/.ssh
public_key="$(cat /tmp/swarmpy-manager.pub)"
grep -qxF "$public_key" /root/.ssh/authorized_keys 2>/dev/null || echo "$public_key" >> /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
if [ "$role" = manager ]; then
    install -d -m 700 /etc/swarmpy
    install -m 600 /tmp/swarmpy-manager-key /etc/swarmpy/id_ed25519
    install -m 644 /tmp/swarmpy-manager.pub /etc/swarmpy/id_ed25519.pub
fi
rm -f /tmp/swarmpy-manager-key /tmp/swarmpy-manager.pub

swarmpy lab image   # swarmpy/busybox:latest, for the examples and tests
echo "provision: $role $(hostname) ready"
