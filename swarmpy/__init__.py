"""swarmpy: a Docker Swarm-style container orchestrator driven by Compose files."""

__version__ = "0.1.0"
