"""`swarmpy secret`: sensitive data given to services as files."""

from swarmpy.cli.objects import object_group

group = object_group("secret", "Create, list, inspect and remove secrets (stored encrypted, given to tasks "
                               "as files under /run/secrets).")
