"""Images for the lab: `swarmpy/busybox:latest` built from Debian's busybox-static,
and any image copied from this machine's engine into every node's engine.

No registry is reachable from the lab, so images travel as `docker save`
archives.
"""

from __future__ import annotations

import os
import tempfile

from swarmpy.lab.shell import LabError, on_each, output, run
from swarmpy.lab.state import Lab

BUSYBOX_IMAGE = "swarmpy/busybox:latest"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no libraries to copy
_EMPTY_DIRS = ("tmp", "www", "etc", "proc", "sys", "dev", "root")


def has_image(image: str) -> bool:
    return run(["docker", "image", "inspect", image], check=False).returncode == 0


def build_image(tag: str = BUSYBOX_IMAGE, force: bool = False) -> bool:
    """Build the busybox image on this machine's engine; False when it was there already."""
    if not force and has_image(tag):
        return False
    if not os.path.exists(BUSYBOX):
        raise LabError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    with tempfile.TemporaryDirectory(prefix="swarmpy-busybox-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "bin"))
        for name in _EMPTY_DIRS:
            os.makedirs(os.path.join(root, name))
        run(["cp", BUSYBOX, os.path.join(root, "bin", "busybox")])
        for applet in output([BUSYBOX, "--list-full"]).split():
            if os.path.basename(applet) == "busybox":
                continue  # a link named busybox would point at itself
            link = os.path.join(root, applet)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink("/bin/busybox", link)
        archive = run(["tar", "-C", root, "-c", "."]).stdout  # about 2 MB
        run(["docker", "import",
             "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
             "-c", 'CMD ["sh"]',
             "-", tag], input=archive)
    return True


def check_present(images: list[str]) -> None:
    missing = [image for image in images if not has_image(image)]
    if missing:
        raise LabError(f"not on this machine's engine: {', '.join(missing)} (docker pull or build it first)")


def load_images(lab: Lab, images: list[str], progress=None) -> None:
    """`docker save` once from this machine's engine, `docker load` into all nodes at once."""
    check_present(images)
    archive = os.path.join(lab.dir, "images.tar")
    try:
        run(["docker", "save", "-o", archive, *images], timeout=600)

        def load(node):
            run(["docker", "-H", node.docker_host, "load", "-q", "-i", archive], timeout=600)
            if progress:
                progress(f"{node.name}: loaded {', '.join(images)}")

        on_each(load, lab.nodes)
    finally:
        if os.path.exists(archive):
            os.remove(archive)
