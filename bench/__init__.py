"""Benchmarks: swarmpy against Docker Swarm and the raw Docker API, on one machine, in one run."""
