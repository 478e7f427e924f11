"""The manager's Flask app with no cluster behind it (the store a Redis that does not answer)."""

from __future__ import annotations

from swarmpy.manager.api import create_app
from swarmpy.manager.context import ManagerContext
from swarmpy.settings import ClusterConfig
from swarmpy.store import Store

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
TOKEN = "t"


def offline_app():
    ctx = ManagerContext(store=Store.from_url(NOWHERE, socket_connect_timeout=0.2), vault=None, queues=None,
                         token=TOKEN, manager_id="m", config=ClusterConfig(redis_url=NOWHERE, api_url="http://127.0.0.1:1"),
                         state=None)
    return create_app(ctx)
