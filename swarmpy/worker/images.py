"""Getting a task's image onto its node.

No registry may be reachable (air-gapped clusters, these lab machines), so the
first source is the engine of the machine the worker runs on: if it has the
image, it is streamed into the node (`docker save` -> `docker load`) once per
node and image, under a lock so concurrent jobs do not send it twice. Else
the node pulls it. A task whose image cannot be had anywhere is rejected.
"""

from __future__ import annotations

import logging
import time

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from swarmpy.store import Store

log = logging.getLogger(__name__)

TRANSFER_LOCK_MS = 120_000


class ImageUnavailable(Exception):
    """The image is on no engine this worker knows and no registry served it."""


def normalize(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return image if ("@" in image or ":" in name) else image + ":latest"


def has_image(client: docker.DockerClient, image: str) -> bool:
    try:
        client.api.inspect_image(normalize(image))
        return True
    except (ImageNotFound, NotFound):
        return False


def ensure_image(store: Store, node_id: str, client: docker.DockerClient,
                 source: docker.DockerClient | None, image: str, worker_name: str = "") -> str:
    """Make sure `image` is on the node; returns how (present, sent, pulled)."""
    image = normalize(image)
    if has_image(client, image):
        return "present"
    lock = f"image:{node_id}:{image}"
    holder = f"{worker_name}|{time.time()}"
    deadline = time.time() + TRANSFER_LOCK_MS / 1000
    while not store.acquire_lease(lock, holder, TRANSFER_LOCK_MS):
        # another job is sending it: wait for it to land, unless its worker died mid-way
        other = store.lease_holder(lock) or ""
        other_worker = other.split("|", 1)[0]
        if other_worker and not store.is_alive("worker", other_worker):
            store.release_lease(lock, other)
            continue
        if time.time() > deadline:
            break
        time.sleep(0.2)
        if has_image(client, image):
            return "present"
    try:
        if has_image(client, image):
            return "present"
        if source is not None and has_image(source, image):
            log.info("sending image %s to node %s", image, node_id)
            client.api.load_image(source.api.get_image(image))
            return "sent"
        try:
            repository, _, tag = image.rpartition(":")
            client.api.pull(repository, tag=tag)
            if has_image(client, image):
                return "pulled"
        except (APIError, DockerException) as e:
            raise ImageUnavailable(f"No such image: {image} (not on the manager's engine, pull failed: "
                                   f"{_short(e)})") from e
        raise ImageUnavailable(f"No such image: {image}")
    finally:
        store.release_lease(lock, holder)


def _short(error: Exception) -> str:
    text = getattr(error, "explanation", None) or str(error)
    return str(text).splitlines()[0][:200]
