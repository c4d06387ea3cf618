"""A layered (Sugiyama, dot-like) layout of a directed graph, in pure Python.

The HTML report draws dependency graphs of up to a few hundred nodes and a few
thousand edges, and must render in well under a second with nothing but the
standard library. We implement the classic pipeline here rather than call
Graphviz (often not installed) or grandalf (tried: 0.4 s for the 64 packages of
Twisted, no way to keep a cycle's members together, output order not
guaranteed stable), because the report needs two things those do not give:

* **cycles as groups**: every strongly connected component with more than one
  member gets a band of layers of its own, shared with no other node, so its
  members can be outlined by one rectangle that holds no unrelated box;
* **determinism**: the same report gives the same file, byte for byte.

Steps: (1) condense strongly connected components and level each one inside
(the report's suggested cuts are preferred as the upward edges); (2) stack the
components, sinks at the bottom, so importers sit above what they import;
(3) replace each edge longer than one layer by a chain of dummy nodes;
(4) order every layer by barycenter sweeps, keeping the ordering with the
fewest crossings; (5) place x by weighted isotonic regression per layer (the
closest positions to the neighbours' mean that keep the minimum gaps), which
keeps long edges straight and boxes apart; (6) route each edge through its
dummies. A route is a list of waypoints: between two rows it is a curve that
stays inside the bounding box of its two waypoints (so inside the gap between
the rows), across a row it is a vertical line at its dummy's x, which step 5
keeps clear of every box. Hence no edge is ever drawn through a box other than
its own two ends, a property the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from corral.plugins.builtin.architecture.cycles import components_sinks_first

__all__ = ["GraphLayout", "layout_graph"]

NODE_H = 28.0
MARGIN = 24.0
BOX_GAP = 22.0  # between two boxes of a row
LINE_GAP = 7.0  # between a dummy (an edge passing a row) and its neighbours
MIN_ROW_GAP = 56.0
MAX_ROW_GAP = 150.0
BAND_PAD = 10.0  # a cycle's outline around its boxes
SWEEPS = 10
PLACE_ROUNDS = 6

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # x, y (top-left), width, height


@dataclass(slots=True)
class GraphLayout:
    """Boxes, routed edges and cycle outlines, in SVG user units.

    ``layer`` is the node's layer (0 = top; importers above what they import).
    ``routes[(a, b)]`` runs from ``a`` to ``b`` (upwards for the feedback edges
    of a cycle); see :func:`path_data`. ``bands`` are the cycles: members and
    the outline around them.
    """

    boxes: dict[str, Rect]
    layer: dict[str, int]
    routes: dict[tuple[str, str], list[Point]]
    bands: list[tuple[list[str], Rect]]
    width: float
    height: float
    upward: set[tuple[str, str]] = field(default_factory=set)


def _reaches(start: str, goal: str, succ: Mapping[str, list[str]]) -> bool:
    seen = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for nxt in succ[node]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _inner_depths(
    comp: list[str], succ: Mapping[str, list[str]], feedback: set[tuple[str, str]]
) -> dict[str, int]:
    """Levels inside one strongly connected component, top = 0.

    The preferred feedback edges (suggested cuts) are dropped first, then the
    back edges of a deterministic DFS, which leaves a DAG; a dropped cut that
    closes no cycle is put back. Every dropped edge then has a path the other
    way, so its ends are on different levels and it is drawn pointing up.
    """
    inside = set(comp)
    internal = {n: [m for m in succ[n] if m in inside] for n in comp}
    preferred = {n: [m for m in internal[n] if (n, m) in feedback] for n in comp}
    first = {n: [m for m in internal[n] if (n, m) not in feedback] for n in comp}
    indeg = dict.fromkeys(comp, 0)
    for targets in first.values():
        for m in targets:
            indeg[m] += 1
    kept: dict[str, list[str]] = {n: [] for n in comp}
    state: dict[str, int] = {}  # 1 = on the DFS path, 2 = finished
    for root in sorted(comp, key=lambda n: (indeg[n] - len(first[n]), n)):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(first[root]))]
        while stack:
            node, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) != 1:  # an edge back onto the path would close a cycle
                kept[node].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(first[nxt])))
    for n in comp:
        for m in preferred[n]:
            if not _reaches(m, n, kept):
                kept[n].append(m)
    remaining = dict.fromkeys(comp, 0)
    for targets in kept.values():
        for m in targets:
            remaining[m] += 1
    depth = dict.fromkeys(comp, 0)
    ready = sorted((n for n in comp if remaining[n] == 0), reverse=True)
    while ready:  # Kahn: longest path from the top
        node = ready.pop()
        for m in kept[node]:
            depth[m] = max(depth[m], depth[node] + 1)
            remaining[m] -= 1
            if remaining[m] == 0:
                ready.append(m)
    return depth


def _layers(
    names: list[str], succ: Mapping[str, list[str]], feedback: set[tuple[str, str]]
) -> tuple[dict[str, int], list[list[str]]]:
    """Layer of every node (0 = top), and the cycles (components of 2+)."""
    comps = components_sinks_first(succ, names)  # what a component imports comes first
    comp_of = {n: i for i, comp in enumerate(comps) for n in comp}
    depth: dict[str, int] = {}
    thick = [1] * len(comps)
    bottom = [0] * len(comps)  # lowest layer of the component, counted from the bottom
    reserved: list[tuple[int, int]] = []  # layers a cycle keeps to itself
    used = 0  # layers (from the bottom) taken so far
    for i, comp in enumerate(comps):
        depth.update(_inner_depths(comp, succ, feedback) if len(comp) > 1 else {comp[0]: 0})
        thick[i] = 1 + max(depth[n] for n in comp)
        below = {comp_of[b] for a in comp for b in succ[a]} - {i}
        need = max((bottom[j] + thick[j] for j in below), default=0)
        if len(comp) > 1:
            need = max(need, used)  # above everything placed: nothing shares the band
            reserved.append((need, need + thick[i]))
        else:
            moved = True
            while moved:
                moved = False
                for lo, hi in reserved:
                    if lo <= need < hi:
                        need, moved = hi, True
        bottom[i] = need
        used = max(used, need + thick[i])
    total = max(used, 1)
    layer = {n: total - 1 - (bottom[comp_of[n]] + thick[comp_of[n]] - 1 - depth[n]) for n in names}
    return layer, [comp for comp in comps if len(comp) > 1]


def _crossings(upper: list[int], lower_pos: list[int], down: list[list[int]]) -> int:
    """Crossings between two adjacent layers (inversions, counted with a BIT)."""
    targets = [lower_pos[m] for v in upper for m in sorted(down[v], key=lambda m: lower_pos[m])]
    size = max(targets, default=0) + 2
    tree = [0] * (size + 1)
    count = 0
    for seen, t in enumerate(targets):
        i = t + 2
        le = 0
        while i > 0:  # how many seen so far end at or left of t
            le += tree[i]
            i -= i & -i
        count += seen - le
        i = t + 2
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def _order(rows: list[list[int]], up: list[list[int]], down: list[list[int]]) -> list[list[int]]:
    """Barycenter sweeps down and up; the ordering with the fewest crossings wins."""
    pos = [0] * len(up)

    def index(rows: list[list[int]]) -> None:
        for row in rows:
            for i, v in enumerate(row):
                pos[v] = i

    def total(rows: list[list[int]]) -> int:
        index(rows)
        return sum(_crossings(rows[i], pos, down) for i in range(len(rows) - 1))

    best = [list(r) for r in rows]
    best_count = total(rows)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        index(rows)
        for li in order:
            nbrs = up if downward else down

            def key(v: int, nbrs: list[list[int]] = nbrs) -> tuple[float, int]:
                ns = nbrs[v]
                return (sum(pos[m] for m in ns) / len(ns) if ns else float(pos[v])), pos[v]

            rows[li].sort(key=key)
            for i, v in enumerate(rows[li]):
                pos[v] = i
        count = total(rows)
        if count < best_count:
            best, best_count = [list(r) for r in rows], count
        if best_count == 0:
            break
    return best


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """Nondecreasing values closest to ``targets`` (weighted least squares): PAV."""
    blocks: list[list[float]] = []  # [weight, weighted sum, count]
    for t, w in zip(targets, weights, strict=True):
        blocks.append([w, w * t, 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, c2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += c2
    out: list[float] = []
    for w, s, c in blocks:
        out += [s / w] * int(c)
    return out


def _place(
    rows: list[list[int]],
    width: list[float],
    real: int,
    up: list[list[int]],
    down: list[list[int]],
) -> list[float]:
    """Centre x of every node: near its neighbours, never closer than the gaps."""

    def sep(a: int, b: int) -> float:
        gap = BOX_GAP if a < real and b < real else LINE_GAP
        return (width[a] + width[b]) / 2 + gap

    offsets: list[list[float]] = []
    x = [0.0] * len(width)
    for row in rows:
        off = [0.0] if row else []
        for a, b in pairwise(row):
            off.append(off[-1] + sep(a, b))
        offsets.append(off)
        for v, o in zip(row, off, strict=True):
            x[v] = o - off[-1] / 2
    for rnd in range(PLACE_ROUNDS * 2 + 1):
        last = rnd == PLACE_ROUNDS * 2
        downward = rnd % 2 == 0
        order = range(len(rows)) if downward else range(len(rows) - 1, -1, -1)
        for li in order:
            row, off = rows[li], offsets[li]
            targets, weights = [], []
            for v, o in zip(row, off, strict=True):
                ns = up[v] + down[v] if last else (up[v] if downward else down[v])
                if ns:
                    want = sum(x[m] for m in ns) / len(ns)
                    w = len(ns) * (4.0 if v >= real else 1.0)  # keep long edges straight
                else:
                    want, w = x[v], 0.05
                targets.append(want - o)
                weights.append(w)
            for v, o, y in zip(row, off, _isotonic(targets, weights), strict=True):
                x[v] = y + o
    return x


def layout_graph(
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str]],
    widths: Mapping[str, float] | None = None,
    feedback: Iterable[tuple[str, str]] = (),
) -> GraphLayout:
    """Lay out a directed graph; see the module docstring for the method.

    ``widths`` gives each box's width (default 120); ``feedback`` names the
    edges of a cycle to prefer as the ones drawn pointing up. Self-loops and
    edges to unknown nodes are ignored.
    """
    names = sorted(set(nodes))
    known = set(names)
    widths = widths or {}
    pairs = sorted({(a, b) for a, b in edges if a in known and b in known and a != b})
    succ_sets: dict[str, set[str]] = {n: set() for n in names}
    for a, b in pairs:
        succ_sets[a].add(b)
    succ = {n: sorted(v) for n, v in succ_sets.items()}
    layer, cycles = _layers(names, succ, set(feedback))
    nlayers = 1 + max(layer.values(), default=0)
    k = _Skeleton(names, pairs, layer, widths)

    rows: list[list[int]] = [[] for _ in range(nlayers)]
    for v in range(len(k.width)):  # boxes by name, then dummies in edge order
        rows[k.lay[v]].append(v)
    rows = _order(rows, k.up, k.down)
    x = _place(rows, k.width, k.real, k.up, k.down)
    left = min((x[v] - k.width[v] / 2 for v in range(len(k.width))), default=0.0)
    right = max((x[v] + k.width[v] / 2 for v in range(len(k.width))), default=0.0)
    shift = MARGIN - left
    x = [v + shift for v in x]
    row_top = _row_tops(rows, k.down)
    height = row_top[-1] + NODE_H + MARGIN
    boxes = {
        n: (x[i] - k.width[i] / 2, row_top[k.lay[i]], k.width[i], NODE_H) for n, i in k.ids.items()
    }
    return GraphLayout(
        {n: _rounded(b) for n, b in boxes.items()},
        layer,
        _routes(k, x, row_top),
        _bands(cycles, boxes, layer),
        round(right - left + 2 * MARGIN, 1),
        round(height, 1),
        k.upward,
    )


class _Skeleton:
    """The graph made proper: boxes ``0..real-1``, then dummy nodes where an
    edge crosses a row; each edge's chain of nodes from top to bottom."""

    def __init__(
        self,
        names: list[str],
        pairs: list[tuple[str, str]],
        layer: Mapping[str, int],
        widths: Mapping[str, float],
    ) -> None:
        self.ids = {n: i for i, n in enumerate(names)}
        self.real = len(names)
        self.width = [float(widths.get(n, 120.0)) for n in names]
        self.lay = [layer[n] for n in names]
        self.chains: dict[tuple[str, str], list[int]] = {}
        self.upward: set[tuple[str, str]] = set()
        # Edge concentration: the edges into one node share their dummies (one
        # trunk per imported node and direction), so forty importers of a hub
        # make one line down to it, not forty parallel ones.
        trunk: dict[tuple[str, bool, int], int] = {}
        hops: set[tuple[int, int]] = set()
        for a, b in pairs:
            top, low = (a, b) if layer[a] < layer[b] else (b, a)
            if top == b:
                self.upward.add((a, b))
            chain = [self.ids[top]]
            for li in range(layer[top] + 1, layer[low]):
                key = (b, top == b, li)
                if key not in trunk:
                    trunk[key] = len(self.width)
                    self.width.append(0.0)
                    self.lay.append(li)
                chain.append(trunk[key])
            chain.append(self.ids[low])
            hops.update(pairwise(chain))
            self.chains[(a, b)] = chain
        self.up: list[list[int]] = [[] for _ in self.width]
        self.down: list[list[int]] = [[] for _ in self.width]
        for u, v in sorted(hops):
            self.down[u].append(v)
            self.up[v].append(u)


def _row_tops(rows: list[list[int]], down: list[list[int]]) -> list[float]:
    """Where each row starts: rows with more edges leaving them get more room."""
    row_top = [0.0] * len(rows)
    y = MARGIN + 14.0  # room for a cycle's label above its outline
    for li, row in enumerate(rows):
        row_top[li] = round(y, 1)
        between = sum(len(down[v]) for v in row)  # more edges, more room to part
        y += NODE_H + min(MAX_ROW_GAP, MIN_ROW_GAP + 0.35 * between)
    return row_top


def _routes(
    k: _Skeleton, x: list[float], row_top: list[float]
) -> dict[tuple[str, str], list[Point]]:
    """Each edge's route through its chain, from a port on its box.

    Ports: the edges leaving a box's bottom (or entering its top) are spread
    along it, sorted by where they go, so they part instead of crossing."""

    def port_key(v: int, bottom: bool, nbr: int, a: str, b: str) -> tuple[object, ...]:
        return (v, bottom, nbr) if nbr >= k.real else (v, bottom, nbr, a, b)  # shared trunks

    attached: dict[tuple[int, bool], set[tuple[float, tuple[object, ...]]]] = {}
    for (a, b), chain in k.chains.items():
        end = port_key(chain[0], True, chain[1], a, b)
        attached.setdefault((chain[0], True), set()).add((x[chain[1]], end))
        end = port_key(chain[-1], False, chain[-2], a, b)
        attached.setdefault((chain[-1], False), set()).add((x[chain[-2]], end))
    ports: dict[tuple[object, ...], float] = {}
    for (v, _), ends in attached.items():
        ordered = sorted(ends, key=lambda e: (e[0], repr(e[1])))
        step = min(10.0, max(0.0, k.width[v] - 16.0) / max(len(ordered) - 1, 1))
        for i, (_, end) in enumerate(ordered):
            ports[end] = x[v] + (i - (len(ordered) - 1) / 2) * step

    routes: dict[tuple[str, str], list[Point]] = {}
    lay = k.lay
    for (a, b), chain in k.chains.items():
        first, last = chain[0], chain[-1]
        start = ports[port_key(first, True, chain[1], a, b)]
        pts: list[Point] = [(start, row_top[lay[first]] + NODE_H)]
        for d in chain[1:-1]:
            pts += [(x[d], row_top[lay[d]]), (x[d], row_top[lay[d]] + NODE_H)]
        pts.append((ports[port_key(last, False, chain[-2], a, b)], row_top[lay[last]]))
        if (a, b) in k.upward:
            pts.reverse()
        routes[(a, b)] = [(round(px, 1), round(py, 1)) for px, py in pts]
    return routes


def _bands(
    cycles: Iterable[list[str]], boxes: Mapping[str, Rect], layer: Mapping[str, int]
) -> list[tuple[list[str], Rect]]:
    """An outline around each cycle's boxes, top cycles first."""
    bands: list[tuple[list[str], Rect]] = []
    for comp in sorted(cycles, key=lambda c: (min(layer[n] for n in c), c)):
        xs = [boxes[n][0] for n in comp] + [boxes[n][0] + boxes[n][2] for n in comp]
        upper = min(boxes[n][1] for n in comp) - BAND_PAD
        lower = max(boxes[n][1] for n in comp) + NODE_H + BAND_PAD
        rect = (min(xs) - BAND_PAD, upper, max(xs) - min(xs) + 2 * BAND_PAD, lower - upper)
        bands.append((sorted(comp), _rounded(rect)))
    return bands


def _rounded(rect: Rect) -> Rect:
    return (round(rect[0], 1), round(rect[1], 1), round(rect[2], 1), round(rect[3], 1))


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def path_data(points: list[Point]) -> str:
    """SVG path of a route: straight across a row, a vertical-tangent curve
    between rows (which never leaves the box spanned by its two ends)."""
    if not points:
        return ""
    out = [f"M{_f(points[0][0])},{_f(points[0][1])}"]
    for (x1, y1), (x2, y2) in pairwise(points):
        if x1 == x2:
            out.append(f"L{_f(x2)},{_f(y2)}")
        else:
            ym = (y1 + y2) / 2
            out.append(f"C{_f(x1)},{_f(ym)} {_f(x2)},{_f(ym)} {_f(x2)},{_f(y2)}")
    return " ".join(out)
