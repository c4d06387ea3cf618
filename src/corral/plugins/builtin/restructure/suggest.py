"""From the analysis to a plan: moves that break package cycles and resolve
layer violations.

For every package cycle the analysis finds, its *cut* (the fewest imports
between packages whose removal breaks the cycle, each made of module
imports) names the imports to get rid of. A move
removes an import between two packages by putting its two ends in the same
package: the importing module moves into the imported one's package, or the
imported module into the importer's. For every direct violation of a layer
contract (a module of a lower layer importing one of a higher layer,
directly or through a chain: then the chain's first import into the higher
layer), the candidates are the imported module moving down into the
importer's layer, and the importer moving up into the imported one's.

Each candidate is tried on the predicted graph (today's, names renamed:
:func:`.architecture.predicted_cycles`, :func:`.architecture.predicted_violations`
against today's contracts), and a move is proposed only if it creates no
package cycle and adds no violation while removing some of either; of
several, the one that leaves the fewest package cycles, then violations.
Moves are chosen one after another, each on the graph the previous ones
lead to. Pure: no I/O beyond the analysis it is given.
"""

from __future__ import annotations

from typing import Any

from corral.plugins.builtin.restructure.architecture import (
    Analysis,
    predicted_cycles,
    predicted_violations,
)
from corral.plugins.builtin.restructure.errors import RestructureError
from corral.plugins.builtin.restructure.moves import Move, Renames, check

__all__ = ["plan_toml", "suggest_moves"]

#: Candidates tried per round (each costs a check of the predicted graph).
MAX_CANDIDATES = 40


def _package(name: str, packages: set[str]) -> str:
    while name and name not in packages:
        name = name.rpartition(".")[0]
    return name


def _into(module: str, package: str, modules: dict[str, bool]) -> Move | None:
    """``module`` moved into ``package`` under its own last name, if it can."""
    if modules.get(module) or not modules.get(package):  # only modules, into packages
        return None
    target = f"{package}.{module.rsplit('.', 1)[-1]}"
    return None if target in modules else Move(module, target)


def _candidates(before: Analysis, modules: dict[str, bool]) -> list[tuple[Move, int]]:
    """Candidate moves, each with its rank among equally good ones: 0 for a
    module moving down into the layer that needs it (shared code belongs
    below its users), 1 for any other."""
    packages = {m for m, is_pkg in modules.items() if is_pkg}
    ranked: dict[Move, int] = {}

    def add(move: Move | None, rank: int) -> None:
        if move is not None:
            ranked[move] = min(rank, ranked.get(move, rank))

    for cut in before.package_cuts:
        for a, b in cut:
            pa, pb = _package(a, packages), _package(b, packages)
            if pa != pb:
                add(_into(a, pb, modules), 1)
                add(_into(b, pa, modules), 1)
    for importer, imported, importer_layer, imported_layer in before.layer_violations:
        add(_into(imported, importer_layer, modules), 0)
        add(_into(importer, imported_layer, modules), 1)
    # the preferred kind first (each round tries only the first MAX_CANDIDATES)
    return sorted(ranked.items(), key=lambda item: item[1])


def suggest_moves(before: Analysis, modules: dict[str, bool], limit: int = 10) -> list[Move]:
    """Moves (at most ``limit``) that break package cycles or resolve layer
    violations without creating any.

    The first round tries the first :data:`MAX_CANDIDATES` candidates; each
    later round only those that helped in the round before (one that helps
    nothing alone seldom starts to after another move), so the cost is about
    one check of the predicted graph per candidate, not one per round.
    """
    chosen: list[Move] = []
    now = (len(before.summary["package_cycles"]), int(before.summary["violations"]))
    candidates = _candidates(before, modules)[:MAX_CANDIDATES]
    while any(now) and len(chosen) < limit:
        helping: list[tuple[tuple[int, int], int, Move]] = []
        for move, rank in candidates:
            if any(move.old == m.old or move.new == m.new for m in chosen):
                continue
            try:
                renames = check([*chosen, move], modules)
            except RestructureError:
                continue
            predicted = predicted_cycles(before, renames, [])
            if predicted["new_package_cycles"]:
                continue
            after = (len(predicted["package_cycles"]), predicted_violations(before, renames, []))
            if after[0] > now[0] or after[1] > now[1] or after == now:
                continue
            helping.append((after, rank, move))
        if not helping:
            break
        best = min(helping, key=lambda h: (h[0], h[1]))
        now = best[0]
        chosen.append(best[2])
        candidates = [(move, rank) for _, rank, move in helping if move != best[2]]
    return chosen


def plan_toml(moves: list[Move], before: Analysis, renames: Renames | None) -> str:
    """The moves as a plan file (``corral restructure --plan``), commented."""
    lines = [
        "# Moves proposed by corral from the architecture analysis: each breaks",
        "# package cycles or resolves layer violations, and creates none. Edit, then:",
        "#   corral restructure PATH --plan THIS_FILE            (a dry run: the diff)",
        "#   corral restructure PATH --plan THIS_FILE --apply    (validated, or rolled back)",
        f"# package cycles today: {len(before.summary['package_cycles'])}",
        f"# layer contract violations today: {before.summary['violations']}",
    ]
    if renames is not None:
        after = predicted_cycles(before, renames, [])
        lines.append(f"# package cycles after these moves: {len(after['package_cycles'])}")
        violations = predicted_violations(before, renames, [])
        lines.append(f"# layer contract violations after these moves: {violations}")
    lines.append('# test_command = "pytest -q"')
    for move in moves:
        lines += ["", "[[move]]", f'from = "{move.old}"', f'to = "{move.new}"']
    return "\n".join(lines) + "\n"


def suggestion(before: Analysis, modules: dict[str, bool]) -> dict[str, Any]:
    """The proposed moves and the plan file that holds them."""
    moves = suggest_moves(before, modules)
    renames = check(moves, modules) if moves else None
    return {"moves": moves, "plan": plan_toml(moves, before, renames)}
