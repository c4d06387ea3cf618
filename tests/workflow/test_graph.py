"""The step graph: order, cycles, ancestry, critical paths (pure logic)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.workflow.graph import (
    IndexSet,
    ancestors,
    critical_path_lengths,
    dependents_of,
    find_cycle,
    topological_order,
)


def chain(n: int) -> list[list[int]]:
    """0 <- 1 <- 2 ... (each step needs the one before)."""
    return [[i - 1] if i else [] for i in range(n)]


def test_dependents_of() -> None:
    assert dependents_of([[], [0], [0, 1], []]) == [[1, 2], [2], [], []]


def test_topological_order_is_stable() -> None:
    # Independent steps keep their declared order.
    assert topological_order([[], [], [], []]) == [0, 1, 2, 3]
    # 0 needs 2; 1 is free: 1 and 2 are ready first, in declared order.
    assert topological_order([[2], [], []]) == [1, 2, 0]
    # Diamond declared backwards.
    assert topological_order([[1, 2], [3], [3], []]) == [3, 1, 2, 0]
    # Duplicate needs count once.
    assert topological_order([[], [0, 0]]) == [0, 1]


def test_topological_order_rejects_cycles() -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order([[1], [0]])


def test_find_cycle_none() -> None:
    assert find_cycle([]) is None
    assert find_cycle([[], [0], [0, 1]]) is None


@pytest.mark.parametrize(
    ("needs", "cycle"),
    [
        ([[0]], [0, 0]),
        ([[1], [0]], [0, 1, 0]),
        ([[], [2], [3], [1]], [1, 2, 3, 1]),
        ([[1], [2], [3], [2]], [2, 3, 2]),
    ],
)
def test_find_cycle_follows_needs(needs: list[list[int]], cycle: list[int]) -> None:
    assert find_cycle(needs) == cycle


def test_long_chain_without_recursion() -> None:
    n = 10_000
    needs = chain(n)
    assert find_cycle(needs) is None
    order = topological_order(needs)
    assert order == list(range(n))
    anc = ancestors(needs, order)
    assert len(anc[-1]) == n - 1
    assert 0 in anc[-1] and n - 1 not in anc[-1]
    lengths = critical_path_lengths(needs, order, [1.0] * n)
    assert lengths[0] == n and lengths[-1] == 1.0


def test_long_cycle_found_without_recursion() -> None:
    n = 10_000
    needs = chain(n)
    needs[0] = [n - 1]  # close the ring
    cycle = find_cycle(needs)
    assert cycle is not None
    assert len(cycle) == n + 1
    assert cycle[0] == cycle[-1]
    # Every consecutive pair is a needs edge.
    assert all(b in needs[a] for a, b in itertools.pairwise(cycle))


def test_cycle_behind_a_long_chain() -> None:
    n = 10_000
    needs = chain(n)
    needs[5000] = [4999, n - 1]  # n-1 transitively needs 5000
    cycle = find_cycle(needs)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == set(range(5000, n))


def test_ancestors() -> None:
    needs = [[], [0], [0], [1, 2], []]
    anc = ancestors(needs, topological_order(needs))
    assert anc == [set(), {0}, {0}, {0, 1, 2}, set()]
    assert anc[3] == frozenset({0, 1, 2})
    assert frozenset({0, 1, 2}) == anc[3]


def test_critical_path_lengths() -> None:
    # 0 -> 1 -> 3 and 0 -> 2 -> 3, with 2 slow; 4 is alone.
    needs = [[], [0], [0], [1, 2], []]
    order = topological_order(needs)
    lengths = critical_path_lengths(needs, order, [1.0, 1.0, 5.0, 2.0, 0.5])
    assert lengths == [8.0, 3.0, 7.0, 2.0, 0.5]


def test_index_set() -> None:
    s = IndexSet([5, 0, 130, 5])
    assert list(s) == [0, 5, 130]
    assert len(s) == 3
    assert 130 in s and 1 not in s and -1 not in s and "0" not in s
    assert s == {0, 5, 130} and s != {0, 5}
    assert hash(s) == hash(frozenset({0, 5, 130}))
    assert IndexSet() == frozenset()
    assert s & {5, 6} == {5}
    assert repr(IndexSet([2, 1])) == "IndexSet([1, 2])"
    with pytest.raises(ValueError):
        IndexSet([-1])


@st.composite
def dags(draw: st.DrawFn) -> list[list[int]]:
    """Random DAGs, declared in a random order (so needs may point forwards)."""
    n = draw(st.integers(min_value=0, max_value=30))
    labels = draw(st.permutations(range(n)))
    needs: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        earlier = list(range(i))
        deps = draw(st.lists(st.sampled_from(earlier), max_size=4)) if earlier else []
        needs[labels[i]] = [labels[d] for d in deps]
    return needs


@settings(max_examples=200, deadline=None)
@given(dags())
def test_order_respects_needs(needs: list[list[int]]) -> None:
    assert find_cycle(needs) is None
    order = topological_order(needs)
    assert sorted(order) == list(range(len(needs)))
    pos = {step: k for k, step in enumerate(order)}
    assert all(pos[d] < pos[i] for i, deps in enumerate(needs) for d in deps)
    anc = ancestors(needs, order)
    for i, deps in enumerate(needs):
        expected: set[int] = set()
        todo = list(deps)
        while todo:
            d = todo.pop()
            if d not in expected:
                expected.add(d)
                todo.extend(needs[d])
        assert anc[i] == expected


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_adding_a_back_edge_makes_a_cycle(needs: list[list[int]], data: st.DataObject) -> None:
    order = topological_order(needs)
    anc = ancestors(needs, order)
    candidates = [(i, a) for i in range(len(needs)) for a in anc[i]]
    if not candidates:
        return
    i, a = data.draw(st.sampled_from(candidates))
    needs[a] = [*needs[a], i]  # a needs i, which (transitively) needs a
    cycle = find_cycle(needs)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert all(b in needs[x] for x, b in itertools.pairwise(cycle))
    with pytest.raises(ValueError):
        topological_order(needs)
