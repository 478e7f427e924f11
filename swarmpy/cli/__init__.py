"""The `swarmpy` command line: one module per noun, all reaching a cluster through `swarmpy.client`.

Subcommands are imported when used, not at start-up: `swarmpy node ls` need not
load the Compose loader, nor `stack deploy` the lab (the user's command is timed
from the moment it starts)."""

import importlib

import click

from swarmpy import __version__

# Docker's CLI exits 125 when it refuses the command itself (an unknown flag, a bad value, a missing
# argument), and scripts written for it test for that; click's own code is 2.
click.UsageError.exit_code = 125

COMMANDS = {
    "stack": "swarmpy.cli.stack:group",
    "service": "swarmpy.cli.service:group",
    "node": "swarmpy.cli.node:group",
    "network": "swarmpy.cli.network:group",
    "secret": "swarmpy.cli.secret:group",
    "config": "swarmpy.cli.config:group",
    "lab": "swarmpy.cli.lab:group",
    "token": "swarmpy.cli.token:group",
    "events": "swarmpy.cli.events:events",
    "cluster": "swarmpy.cli.cluster:cluster_group",
    "init": "swarmpy.cli.cluster:init",
    "leave": "swarmpy.cli.cluster:leave",
    "down": "swarmpy.cli.cluster:down",
    "supervise": "swarmpy.cli.cluster:supervise",
    "manager": "swarmpy.cli.cluster:manager",
    "manager-loops": "swarmpy.cli.cluster:manager_loops",
    "worker": "swarmpy.cli.cluster:worker",
    "lb": "swarmpy.cli.cluster:lb",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="swarmpy")
def main():
    """swarmpy: a Docker Swarm-style orchestrator driven by Compose files.

    Deploy a Compose stack with `swarmpy stack deploy -c compose.yml NAME`; the
    cluster places its replicas across hosts, keeps them alive, updates them
    without downtime and routes each published port from every manager.
    """
