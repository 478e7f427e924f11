"""The one-machine multi-host lab: N real hosts, each a network namespace with
its own hostname, dockerd and sshd, on a bridge of their own.

    from swarmpy import lab
    l = lab.up(name="test", nodes=3, progress=print)
    l.node("node2").address, l.identity, l.known_hosts
    lab.status("test"); lab.down("test")

Needs root. Uses only the standard library and the ip, iptables, nsenter,
dockerd, sshd and docker commands.
"""

from swarmpy.lab.create import up
from swarmpy.lab.health import status
from swarmpy.lab.images import BUSYBOX_IMAGE, build_image, load_images
from swarmpy.lab.shell import LabError
from swarmpy.lab.state import Lab, LabNode, recorded_labs
from swarmpy.lab.teardown import down

__all__ = ["BUSYBOX_IMAGE", "Lab", "LabError", "LabNode", "build_image", "down", "load_images",
           "recorded_labs", "status", "up"]
