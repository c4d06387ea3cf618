"""A restructuring plan: moves of modules and packages, checked.

``pkg.sub.mod=pkg.core.mod`` moves a module, ``pkg.util=pkg.lib.util`` a
package with everything in it. :func:`check` refuses, before anything is
written, every plan that cannot be carried out, and gives the mapping of
every moved module's old dotted name to its new one. Pure: no I/O.
"""

from __future__ import annotations

import keyword
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from corral.plugins.builtin.restructure.errors import RestructureError

__all__ = ["Move", "Renames", "check", "parse_move", "parse_plan"]


class Move(msgspec.Struct, frozen=True):
    """Move the module or package ``old`` to ``new`` (dotted names)."""

    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.old}={self.new}"


def _check_name(name: str, where: str) -> None:
    parts = name.split(".")
    bad = [p for p in parts if not p.isidentifier() or keyword.iskeyword(p)]
    if not name or bad:
        what = repr(bad[0]) if bad and bad[0] else "an empty part"
        raise RestructureError(
            f"{where}: {name!r} is not a dotted module name ({what} is not an identifier)"
        )


def parse_move(text: str, where: str = "--move") -> Move:
    """``OLD=NEW`` as a :class:`Move` (names checked to be dotted identifiers)."""
    old, sep, new = text.partition("=")
    if not sep:
        raise RestructureError(f"{where} {text!r}: expected OLD=NEW, e.g. pkg.util=pkg.lib.util")
    old, new = old.strip(), new.strip()
    _check_name(old, f"{where} {text!r}")
    _check_name(new, f"{where} {text!r}")
    return Move(old, new)


class _PlanMove(msgspec.Struct, forbid_unknown_fields=True):
    to: str
    from_: str = msgspec.field(name="from")


class _PlanFile(msgspec.Struct, forbid_unknown_fields=True):
    move: list[_PlanMove] = msgspec.field(default_factory=list)
    test_command: str | None = None


def parse_plan(text: str, where: str) -> tuple[list[Move], str | None]:
    """A plan file (TOML): ``[[move]] from = "..." to = "..."`` and an optional
    ``test_command``. Errors name the file and the place."""
    try:
        raw: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RestructureError(f"{where}: not valid TOML: {exc}") from None
    try:
        plan = msgspec.convert(raw, _PlanFile)
    except msgspec.ValidationError as exc:
        raise RestructureError(f"{where}: {exc}") from None
    if not plan.move:
        raise RestructureError(f'{where}: no moves (add [[move]] from = "..." to = "...")')
    moves = [
        parse_move(f"{m.from_}={m.to}", f"{where}: move {i + 1}") for i, m in enumerate(plan.move)
    ]
    return moves, plan.test_command


class Renames:
    """Old dotted module name -> new, for every module a plan moves."""

    def __init__(self, moves: list[Move], modules: Mapping[str, str]) -> None:
        self.moves = moves
        self.modules = dict(modules)  # every moved module: old -> new
        # the moves' own names, longest first: a name inside a moved package
        # (pkg.old.fn) follows the innermost move that covers it
        self._prefixes = sorted(((m.old, m.new) for m in moves), key=lambda p: -len(p[0]))

    def __bool__(self) -> bool:
        return bool(self.modules)

    def in_text(self) -> re.Pattern[str] | None:
        """Moved module names where they stand as whole dotted names in text
        (``pkg.old`` and ``pkg.old.fn``, not ``pkg.older``): group 1 is the name."""
        if not self.modules:
            return None
        names = sorted(self.modules, key=len, reverse=True)
        return re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")(?!\w)")

    def replace_in_text(self, text: str) -> tuple[str, int]:
        """``text`` with every moved module name replaced, and how many."""
        pattern = self.in_text()
        if pattern is None:
            return text, 0
        return pattern.subn(lambda m: self.modules[m.group(1)], text)

    def get(self, name: str) -> str | None:
        """The new name of ``name`` (a module, or a name inside one: ``pkg.old.fn``),
        or None if no move covers it."""
        for old, new in self._prefixes:
            if name == old:
                return new
            if name.startswith(old) and name[len(old)] == ".":
                return new + name[len(old) :]
        return None


def check(moves: Iterable[Move], modules: Mapping[str, bool]) -> Renames:
    """The plan's renames, or :class:`RestructureError` for a plan that cannot
    be carried out. ``modules`` maps every module of the project to whether
    it is a package."""
    moves = list(moves)
    if not moves:
        raise RestructureError("nothing to do: give at least one --move OLD=NEW (or --plan FILE)")
    targets: dict[str, Move] = {}
    for move in moves:
        if move.old not in modules:
            close = sorted(
                m for m in modules if m.rsplit(".", 1)[-1] == move.old.rsplit(".", 1)[-1]
            )
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise RestructureError(f"move {move}: no module or package {move.old!r}{hint}")
        if move.new == move.old:
            raise RestructureError(f"move {move}: the module is already there")
        if move.new.startswith(move.old + "."):
            raise RestructureError(f"move {move}: a package cannot move into itself")
        if move.new in modules:
            raise RestructureError(f"move {move}: {move.new!r} exists already")
        parent = move.new.rpartition(".")[0]
        if parent and modules.get(parent) is False:
            raise RestructureError(
                f"move {move}: {parent!r} is a module, not a package: nothing can go inside it"
            )
        if move.new in targets:
            raise RestructureError(f"moves {targets[move.new]} and {move}: two moves to one target")
        targets[move.new] = move
    for a in moves:
        for b in moves:
            if a is not b and b.old.startswith(a.old + "."):
                raise RestructureError(
                    f"moves {a} and {b}: {b.old!r} is inside {a.old!r}, which moves already; "
                    "move the package, or its parts, not both"
                )
            # b lands inside a's target: only a package can hold it
            if a is not b and b.new.startswith(a.new + ".") and not modules[a.old]:
                raise RestructureError(
                    f"moves {a} and {b}: {a.new!r} becomes a module, so nothing can go inside it"
                )
    renamed: dict[str, str] = {}
    for move in moves:
        for name in modules:
            if name == move.old or name.startswith(move.old + "."):
                renamed[name] = move.new + name[len(move.old) :]
    clash = {n for n in renamed.values() if n in modules and n not in renamed}
    if clash:
        raise RestructureError(f"the plan would move onto existing modules: {sorted(clash)}")
    return Renames(moves, renamed)
