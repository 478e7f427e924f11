"""The scheduler's ranking: which feasible node a service's next task goes to.

A `Partition` holds the statically feasible nodes of one (constraints,
platforms, spread labels) class, split by their spread values into heaps keyed
by (tasks on node, rank); services alike share it. Heap keys are packed into
one int (tasks << RANK_BITS | rank): int compares and no tuple per entry make
the heaps markedly faster than tuples in CPython. A `SpreadTree` is one
service's view of it: at each level of the nested preferences, the value group
that has the fewest tasks of the service, as SwarmKit's decision tree balances
its branches. Nodes that lack a label form the "" group, and the tasks on
nodes that no longer fit still count for their group, as in SwarmKit. A
`Choice` ranks the nodes within a group for one service, as tasks are placed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from swarmpy.manager.constraints import NodeIndex, accessor

Path = tuple[str, ...]  # one spread value per preference, outermost first
RANK_BITS = 24  # room for 16 million nodes and 16 million tasks per node
RANK_MASK = (1 << RANK_BITS) - 1


class Partition:
    """The feasible nodes of one class, in a shared heap per spread group."""

    def __init__(self, spread: tuple[str, ...], index: NodeIndex, feasible: frozenset[int], total: list[int]):
        self.depth = len(spread)
        self.feasible = feasible
        self._read = [accessor(descriptor) for descriptor in spread]
        self._nodes = index.nodes
        self._paths: dict[int, Path] = {}
        self.heaps: dict[Path, list[int]] = {}
        # Split the feasible nodes level by level with set operations, not node by node.
        parts: list[tuple[Path, frozenset[int]]] = [((), feasible)]
        for descriptor in spread:
            groups = index.groups(descriptor)
            parts = [
                (path + (value,), ranks & group)
                for path, ranks in parts
                for value, group in sorted(groups.items())
                if not ranks.isdisjoint(group)
            ]
        for path, ranks in parts:
            heap = [total[rank] << RANK_BITS | rank for rank in ranks]
            heapq.heapify(heap)
            self.heaps[path] = heap
            if self.depth:
                self._paths.update(dict.fromkeys(ranks, path))
        self.sizes = {path: len(heap) for path, heap in self.heaps.items()}
        # The groups below each group, for the groups that hold a feasible node.
        self.children: dict[Path, set[Path]] = {}
        for path in self.heaps:
            for level in range(self.depth):
                self.children.setdefault(path[:level], set()).add(path[: level + 1])

    def path(self, rank: int) -> Path:
        """The node's group, feasible or not (its tasks count for the group all the same)."""
        if not self.depth:
            return ()
        path = self._paths.get(rank)
        if path is None:
            node = self._nodes[rank]
            path = self._paths[rank] = tuple(read(node) for read in self._read)
        return path


class SpreadTree:
    """One service's spread: the group with the fewest of its tasks, level by level."""

    def __init__(self, partition: Partition, counts: dict[int, int]):
        self.depth = partition.depth
        self.count: dict[Path, int] = {}  # tasks of the service in each group
        for rank, tasks in counts.items():
            path = partition.path(rank)
            for level in range(self.depth + 1):
                self.count[path[:level]] = self.count.get(path[:level], 0) + tasks
        self.heaps = {
            parent: [(self.count.get(child, 0), child) for child in children]
            for parent, children in partition.children.items()
        }
        for heap in self.heaps.values():
            heapq.heapify(heap)
        self.closed: set[Path] = set()  # groups where no node fits any more

    def leaf(self) -> Path | None:
        """The group to place the next task in, or None when every group is full."""
        while True:
            path: Path = ()
            for _ in range(self.depth):
                child = self._fewest(path)
                if child is None:
                    if not path:
                        return None
                    self.close(path)
                    break
                path = child
            else:
                return path

    def _fewest(self, parent: Path) -> Path | None:
        heap = self.heaps.get(parent)
        while heap:
            tasks, child = heap[0]
            if child in self.closed:
                heapq.heappop(heap)
            elif tasks != self.count.get(child, 0):
                heapq.heapreplace(heap, (self.count.get(child, 0), child))  # a task was added there
            else:
                return child
        return None

    def close(self, path: Path) -> None:
        self.closed.add(path)

    def add(self, path: Path) -> None:
        for level in range(self.depth + 1):
            self.count[path[:level]] = self.count.get(path[:level], 0) + 1


class Choice:
    """The ranking of nodes for one service, kept up to date as its tasks are placed."""

    def __init__(
        self,
        partition: Partition,
        total: list[int],
        counts: dict[int, int],
        check: Callable[[int], bool] | None,
    ):
        self.partition = partition
        self.total = total  # tasks on each node, shared with the cluster
        self.counts = counts  # tasks of the service on each node, shared with the cluster
        self.check = check  # the load-dependent filters; None when the spec has none
        self.popped: list[tuple[list, int]] = []  # shared-heap entries to give back
        # Nodes where the service has tasks, per spread group: its own small heaps,
        # keyed by (tasks of the service, tasks on node, rank) packed in one int.
        self.own: dict[Path, list[int]] = {}
        # How many nodes of each group the service has no task on and we have not yet tried.
        self.untried = dict(self.partition.sizes)
        feasible = self.partition.feasible
        for rank, count in counts.items():
            if rank in feasible:
                path = self.partition.path(rank)
                self.own.setdefault(path, []).append(self._own_key(rank))
                self.untried[path] -= 1
        for heap in self.own.values():
            heapq.heapify(heap)
        self.tree = SpreadTree(partition, counts) if partition.depth else None

    def next(self) -> tuple[int, Path] | None:
        """The best node and its spread group, or None when no node fits."""
        if self.tree is None:
            rank = self._best_in(())
            return None if rank is None else (rank, ())
        while (path := self.tree.leaf()) is not None:
            rank = self._best_in(path)
            if rank is not None:
                return rank, path
            self.tree.close(path)
        return None

    def _best_in(self, path: Path) -> int | None:
        total, counts, check = self.total, self.counts, self.check
        heap = self.partition.heaps.get(path)
        # Nodes without a task of the service come first, fewest tasks overall first.
        while heap and self.untried[path]:
            key = heap[0]
            rank = key & RANK_MASK
            if key >> RANK_BITS != total[rank]:  # stale: a task was placed there since
                heapq.heapreplace(heap, total[rank] << RANK_BITS | rank)
                continue
            heapq.heappop(heap)
            self.popped.append((heap, rank))
            if rank in counts:
                continue  # ranked in the service's own heap
            self.untried[path] -= 1
            if not check or check(rank):
                return rank
        own = self.own.get(path)
        while own:
            rank = heapq.heappop(own) & RANK_MASK
            if not check or check(rank):
                return rank
        return None

    def _own_key(self, rank: int) -> int:
        return (self.counts[rank] << RANK_BITS | self.total[rank]) << RANK_BITS | rank

    def placed(self, rank: int, path: Path) -> None:
        heapq.heappush(self.own.setdefault(path, []), self._own_key(rank))
        if self.tree is not None:
            self.tree.add(path)

    def give_back(self) -> None:
        """Return the nodes this service took off the shared heaps, with their new keys."""
        total = self.total
        for heap, rank in self.popped:
            heapq.heappush(heap, total[rank] << RANK_BITS | rank)
        self.popped.clear()
