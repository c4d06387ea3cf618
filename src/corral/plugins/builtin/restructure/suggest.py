"""From the analysis to a plan: moves that break package cycles.

For every package cycle the analysis finds, its *cut* (the fewest imports
whose removal breaks the cycle) names the imports to get rid of. A move
removes an import between two packages by putting its two ends in the same
package: the importing module moves into the imported one's package, or the
imported module into the importer's. Each candidate is tried on the
predicted graph (today's, names renamed: :func:`.architecture.predicted_cycles`),
and a move is proposed only if it leaves fewer package cycles and creates
none; of several, the one that leaves the fewest. Moves are chosen one after
another, each on the graph the previous ones lead to. Pure: no I/O beyond
the analysis it is given.
"""

from __future__ import annotations

from typing import Any

from corral.errors import RestructureError
from corral.plugins.builtin.restructure.architecture import Analysis, predicted_cycles
from corral.plugins.builtin.restructure.moves import Move, Renames, check

__all__ = ["plan_toml", "suggest_moves"]


def _package(name: str, packages: set[str]) -> str:
    while name and name not in packages:
        name = name.rpartition(".")[0]
    return name


def _candidates(before: Analysis, modules: dict[str, bool]) -> list[Move]:
    packages = {m for m, is_pkg in modules.items() if is_pkg}
    out: list[Move] = []
    for cycle in before.summary["package_cycles"]:
        members = set(cycle)
        for a, b in sorted(before.edges):
            pa, pb = _package(a, packages), _package(b, packages)
            if pa == pb or pa not in members or pb not in members:
                continue
            for module, into in ((a, pb), (b, pa)):
                if modules.get(module):  # a package: moving it is a bigger decision
                    continue
                target = f"{into}.{module.rsplit('.', 1)[-1]}"
                if target not in modules:
                    out.append(Move(module, target))
    # (unique, in a stable order)
    return list(dict.fromkeys(out))


def suggest_moves(before: Analysis, modules: dict[str, bool], limit: int = 10) -> list[Move]:
    """Moves (at most ``limit``) that break package cycles without creating any."""
    chosen: list[Move] = []
    current = len(before.summary["package_cycles"])
    while current and len(chosen) < limit:
        best: tuple[int, Move] | None = None
        for move in _candidates(before, modules):
            if any(move.old == m.old for m in chosen):
                continue
            try:
                renames = check([*chosen, move], modules)
            except RestructureError:
                continue
            predicted = predicted_cycles(before, renames, [])
            left = len(predicted["package_cycles"])
            if predicted["new_package_cycles"] or left >= current:
                continue
            if best is None or left < best[0]:
                best = (left, move)
        if best is None:
            break
        current = best[0]
        chosen.append(best[1])
    return chosen


def plan_toml(moves: list[Move], before: Analysis, renames: Renames | None) -> str:
    """The moves as a plan file (``corral restructure --plan``), commented."""
    lines = [
        "# Moves proposed by corral from the architecture analysis: each breaks",
        "# package cycles and creates none. Edit, then:",
        "#   corral restructure PATH --plan THIS_FILE            (a dry run: the diff)",
        "#   corral restructure PATH --plan THIS_FILE --apply    (validated, or rolled back)",
        f"# package cycles today: {len(before.summary['package_cycles'])}",
    ]
    if renames is not None:
        after = predicted_cycles(before, renames, [])
        lines.append(f"# package cycles after these moves: {len(after['package_cycles'])}")
    lines.append('# test_command = "pytest -q"')
    for move in moves:
        lines += ["", "[[move]]", f'from = "{move.old}"', f'to = "{move.new}"']
    return "\n".join(lines) + "\n"


def suggestion(before: Analysis, modules: dict[str, bool]) -> dict[str, Any]:
    """The proposed moves and the plan file that holds them."""
    moves = suggest_moves(before, modules)
    renames = check(moves, modules) if moves else None
    return {"moves": moves, "plan": plan_toml(moves, before, renames)}
