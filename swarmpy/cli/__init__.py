"""The `swarmpy` command line: one module per noun, all reaching a cluster through `swarmpy.client`."""

import click

from swarmpy import __version__
from swarmpy.cli import cluster, config, lab, node, secret, service, stack


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="swarmpy")
def main():
    """swarmpy: a Docker Swarm-style orchestrator driven by Compose files.

    Deploy a Compose stack with `swarmpy stack deploy -c compose.yml NAME`; the
    cluster places its replicas across hosts, keeps them alive, updates them
    without downtime and routes each published port from every manager.
    """


for module in (stack, service, node, secret, config, lab):
    main.add_command(module.group)
for command in cluster.commands:
    main.add_command(command)
