"""`swarmpy config`: non-sensitive files given to services."""

from swarmpy.cli.objects import object_group

group = object_group("config", "Create, list, inspect and remove configs (files given to tasks).")
