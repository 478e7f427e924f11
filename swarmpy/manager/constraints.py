"""The scheduler's static filters: placement constraints, platforms, spread values.

None of them depends on load, so the scheduler selects the nodes of each
distinct spec once, through `NodeIndex`, and caches the answer. Matching follows
SwarmKit's constraint package: field names and values compare case-insensitively,
label keys case-sensitively; a label the node lacks reads as "" (`==` fails,
`!=` holds); an unknown field is never satisfied.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
from collections.abc import Callable, Hashable, Sequence

from swarmpy.model import Constraint, Node, Placement, Platform

Accessor = Callable[[Node], str]

_ATTRIBUTES: dict[str, Accessor] = {
    "node.id": lambda node: node.id or "",
    "node.hostname": lambda node: node.hostname or "",
    "node.role": lambda node: node.role or "",
    "node.platform.os": lambda node: node.os or "",
    "node.platform.arch": lambda node: node.architecture or "",
}
_LABEL_PREFIXES = ("node.labels.", "engine.labels.")


def _label_accessor(field: str) -> Accessor | None:
    lowered = field.lower()
    for prefix in _LABEL_PREFIXES:
        if lowered.startswith(prefix) and len(field) > len(prefix):
            key = field[len(prefix) :]  # the label key itself is case-sensitive
            if prefix == "node.labels.":
                return lambda node: node.labels.get(key) or ""
            return lambda node: node.engine_labels.get(key) or ""
    return None


@functools.lru_cache(maxsize=1024)
def accessor(field: str) -> Accessor | None:
    """How to read a constraint field off a node; None for an unknown field (or node.ip)."""
    return _ATTRIBUTES.get(field.lower()) or _label_accessor(field)


def constraint_matches(constraint: Constraint, node: Node) -> bool:
    if constraint.field.lower() == "node.ip":
        equal = _ip_matches(constraint.value, node.address)
    else:
        read = accessor(constraint.field)
        if read is None:
            return False
        equal = read(node).lower() == constraint.value.lower()
    if constraint.operator == "==":
        return bool(equal)
    if constraint.operator == "!=":
        return equal is False  # a malformed address satisfies neither operator
    return False


def constraints_match(constraints: Sequence[Constraint], node: Node) -> bool:
    return all(constraint_matches(c, node) for c in constraints)


def _ip_matches(expected: str, address: str) -> bool | None:
    """Is the node's address `expected` (an address or a CIDR subnet)? None: malformed."""
    try:
        node_ip = ipaddress.ip_address(address)
    except ValueError:
        node_ip = None  # a host name: equal to no address, inside no subnet
    try:
        return node_ip == ipaddress.ip_address(expected)
    except ValueError:
        pass
    try:
        return node_ip is not None and node_ip in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return None


def _arch(architecture: str) -> str:
    return "amd64" if architecture == "x86_64" else architecture


def platform_matches(platforms: Sequence[Platform], node: Node) -> bool:
    """Any listed platform fits the node; an empty os or architecture fits any."""
    if not platforms:
        return True
    arch = _arch(node.architecture)
    return any(
        (not p.architecture or _arch(p.architecture) == arch) and (not p.os or p.os == node.os)
        for p in platforms
    )


def placement_matches(placement: Placement, node: Node) -> bool:
    """The node meets a service's constraints and platforms (who may run a global service)."""
    return constraints_match(placement.constraints, node) and platform_matches(placement.platforms, node)


def spread_supported(descriptor: str) -> bool:
    """SwarmKit spreads over node and engine labels only, and ignores other descriptors."""
    return _label_accessor(descriptor) is not None


class NodeIndex:
    """Nodes (by rank) grouped by attribute value, so that a spec's feasible nodes
    come from a few set operations instead of a Python test per node."""

    def __init__(self, nodes: Sequence[Node]):
        self.nodes = nodes
        self.everyone = frozenset(range(len(nodes)))
        self._groups: dict[str, dict[str, frozenset[int]]] = {}
        self._folded: dict[str, dict[str, frozenset[int]]] = {}
        self._platforms: dict[tuple[str, str], frozenset[int]] | None = None

    def _grouped(self, key: Callable[[Node], Hashable]) -> dict:
        """Key -> the ranks of the nodes having it. Sorting ranks by key and grouping
        runs at C speed; a Python loop over the nodes does not."""
        keys = list(map(key, self.nodes))
        by_key = sorted(range(len(keys)), key=keys.__getitem__)
        return {k: frozenset(ranks) for k, ranks in itertools.groupby(by_key, key=keys.__getitem__)}

    def groups(self, field: str) -> dict[str, frozenset[int]]:
        """Exact value -> the nodes having it ("" for a missing label), for a known field."""
        if field not in self._groups:
            self._groups[field] = self._grouped(accessor(field))
        return self._groups[field]

    def _folded_groups(self, field: str) -> dict[str, frozenset[int]]:
        """Like `groups`, with values compared as constraints compare them: ignoring case."""
        if field not in self._folded:
            folded: dict[str, frozenset[int]] = {}
            for value, ranks in self.groups(field).items():
                value = value.lower()
                folded[value] = folded[value] | ranks if value in folded else ranks
            self._folded[field] = folded
        return self._folded[field]

    def _select(self, constraint: Constraint, ranks: frozenset[int]) -> frozenset[int]:
        if constraint.field.lower() == "node.ip":  # addresses and subnets: test each node
            return frozenset(r for r in ranks if constraint_matches(constraint, self.nodes[r]))
        if accessor(constraint.field) is None:
            return frozenset()  # an unknown field: no node satisfies it
        having = self._folded_groups(constraint.field).get(constraint.value.lower(), frozenset())
        if constraint.operator == "==":
            return ranks & having
        if constraint.operator == "!=":
            return ranks - having
        return frozenset()

    def matching(self, constraints: Sequence[Constraint], platforms: Sequence[Platform]) -> frozenset[int]:
        """The nodes that satisfy every constraint and run one of the platforms."""
        ranks = self.everyone
        for constraint in constraints:
            ranks = self._select(constraint, ranks)
        if platforms:
            if self._platforms is None:
                self._platforms = self._grouped(lambda node: (node.os or "", node.architecture or ""))
            for group in self._platforms.values():
                if not platform_matches(platforms, self.nodes[next(iter(group))]):
                    ranks -= group
        return ranks
