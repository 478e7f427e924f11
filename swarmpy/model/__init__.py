"""Typed specs and records shared by every part of swarmpy.

Specs (`StackSpec`, `ServiceSpec`, ...) are what a user asked for, after the
Compose loader normalized it. Records (`Node`, `Service`, `Task`) are what the
cluster knows and keeps in Redis. All of them are plain dataclasses that turn
into JSON-ready dicts with `to_dict()` and back with `Cls.from_dict(d)`.

This package imports nothing else of swarmpy.
"""

from swarmpy.model.records import (Attachment, Availability, DesiredState, Endpoint, Network, Node, NodeStatus,
                                   Service, ServiceNetwork, Task, TaskState, behaviour_of, has_healthcheck,
                                   takes_traffic)
from swarmpy.model.serial import Serializable, new_id
from swarmpy.model.spec import (Constraint, DeploySpec, FileReference, Healthcheck, Logging, Mount, NetworkSpec,
                                ObjectSpec, Placement, Platform, Port, Preference, Resources, ResourceSet,
                                RestartPolicy, ServiceSpec, StackSpec, Ulimit, UpdateConfig, VolumeSpec,
                                scoped_name)

__all__ = [
    "Attachment", "Availability", "Constraint", "DeploySpec", "DesiredState", "Endpoint", "FileReference",
    "Healthcheck", "Logging", "Mount", "Network", "NetworkSpec", "Node", "NodeStatus", "ObjectSpec", "Placement",
    "Platform", "Port", "Preference", "ResourceSet", "Resources", "RestartPolicy", "Serializable", "Service",
    "ServiceNetwork", "ServiceSpec", "StackSpec", "Task", "TaskState", "Ulimit", "UpdateConfig", "VolumeSpec",
    "behaviour_of", "has_healthcheck", "new_id", "scoped_name", "takes_traffic",
]
