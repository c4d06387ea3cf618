"""The step graph: ordering, cycles, ancestry and critical paths. Pure logic.

Steps are numbered by their declared position; ``needs[i]`` lists the indexes
step ``i`` waits for. Nothing here touches I/O or Trio, so it is tested with
plain data (and hypothesis).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence, Set

__all__ = [
    "IndexSet",
    "ancestors",
    "critical_path_lengths",
    "dependents_of",
    "find_cycle",
    "topological_order",
]


class IndexSet(Set[int]):
    """An immutable set of small non-negative integers, stored as a bitmask.

    Ancestor sets of long chains overlap heavily; as bitmasks they take
    ``n / 8`` bytes each instead of a hash table, so a 10,000-step chain needs
    about 12 MB rather than gigabytes. Compares equal to a ``frozenset`` with
    the same members.
    """

    __slots__ = ("_mask",)

    def __init__(self, members: Iterable[int] = ()) -> None:
        mask = 0
        for i in members:
            if i < 0:
                raise ValueError(f"IndexSet holds non-negative integers, got {i}")
            mask |= 1 << i
        self._mask = mask

    @classmethod
    def from_mask(cls, mask: int) -> IndexSet:
        new = cls.__new__(cls)
        new._mask = mask
        return new

    @property
    def mask(self) -> int:
        return self._mask

    def __contains__(self, item: object) -> bool:
        return isinstance(item, int) and item >= 0 and bool(self._mask >> item & 1)

    def __iter__(self) -> Iterator[int]:
        bits = bin(self._mask)[:1:-1]  # least significant bit first
        i = bits.find("1")
        while i != -1:
            yield i
            i = bits.find("1", i + 1)

    def __len__(self) -> int:
        return self._mask.bit_count()

    def __hash__(self) -> int:
        return self._hash()

    def __repr__(self) -> str:
        return f"IndexSet({sorted(self)})"


def dependents_of(needs: Sequence[Sequence[int]]) -> list[list[int]]:
    """Invert ``needs``: for each step, the steps that wait for it."""
    dependents: list[list[int]] = [[] for _ in needs]
    for i, deps in enumerate(needs):
        for d in deps:
            dependents[d].append(i)
    return dependents


def find_cycle(needs: Sequence[Sequence[int]]) -> list[int] | None:
    """A cycle as a list of step indexes ``[a, b, ..., a]``, or ``None``.

    Iterative DFS (no recursion limit on long chains). The cycle returned
    follows ``needs`` edges: ``a`` needs ``b`` needs ... needs ``a``.
    """
    white, grey, black = 0, 1, 2
    color = [white] * len(needs)
    for root in range(len(needs)):
        if color[root] != white:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = [root]
        color[root] = grey
        while stack:
            node, edge = stack[-1]
            deps = needs[node]
            if edge < len(deps):
                stack[-1] = (node, edge + 1)
                nxt = deps[edge]
                if color[nxt] == grey:
                    start = path.index(nxt)
                    return [*path[start:], nxt]
                if color[nxt] == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(needs: Sequence[Sequence[int]]) -> list[int]:
    """Steps in an order where every step comes after all it needs (stable:
    declared order among independent steps). Raises ``ValueError`` on a cycle."""
    remaining = [len(set(deps)) for deps in needs]
    dependents = dependents_of([sorted(set(d)) for d in needs])
    ready = [i for i, n in enumerate(remaining) if n == 0]
    order: list[int] = []
    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in dependents[i]:
            remaining[j] -= 1
            if remaining[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(needs):
        raise ValueError("the step graph has a cycle")
    return order


def ancestors(needs: Sequence[Sequence[int]], order: Sequence[int]) -> list[IndexSet]:
    """For each step, every step it transitively needs (given a topological order)."""
    masks = [0] * len(needs)
    for i in order:
        acc = 0
        for d in needs[i]:
            acc |= masks[d] | (1 << d)
        masks[i] = acc
    return [IndexSet.from_mask(m) for m in masks]


def critical_path_lengths(
    needs: Sequence[Sequence[int]],
    order: Sequence[int],
    durations: Sequence[float],
) -> list[float]:
    """For each step, the longest total duration from its start to the end of the
    workflow (itself plus its longest chain of dependents). Steps with larger
    values are on the critical path and should start first."""
    dependents = dependents_of(needs)
    length = [0.0] * len(needs)
    for i in reversed(order):
        tail = max((length[j] for j in dependents[i]), default=0.0)
        length[i] = durations[i] + tail
    return length
