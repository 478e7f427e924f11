"""Placeholder until the routing mesh lands (issue 6)."""


def run(state, node_id=None):
    raise SystemExit("swarmpy lb: not implemented yet")
