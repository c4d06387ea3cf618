"""Plans of moves: parsing and every impossible plan refused."""

from __future__ import annotations

import pytest

from corral.errors import RestructureError
from corral.plugins.builtin.restructure.moves import Move, check, parse_move, parse_plan

MODULES = {
    "pkg": True,
    "pkg.sub": True,
    "pkg.sub.mod": False,
    "pkg.sub.other": False,
    "pkg.core": True,
    "pkg.core.base": False,
    "pkg.app": False,
}


def test_parse_move() -> None:
    assert parse_move(" pkg.sub.mod = pkg.core.mod ") == Move("pkg.sub.mod", "pkg.core.mod")
    with pytest.raises(RestructureError, match="expected OLD=NEW"):
        parse_move("pkg.sub.mod")
    with pytest.raises(RestructureError, match="'class' is not an identifier"):
        parse_move("pkg.sub.mod=pkg.class.mod")
    with pytest.raises(RestructureError, match="'2x' is not an identifier"):
        parse_move("pkg.2x=pkg.y")
    with pytest.raises(RestructureError, match="an empty part"):
        parse_move("pkg..a=pkg.b")


def test_a_package_move_renames_everything_inside_it() -> None:
    renames = check([Move("pkg.sub", "pkg.lib.sub")], MODULES)
    assert renames.modules == {
        "pkg.sub": "pkg.lib.sub",
        "pkg.sub.mod": "pkg.lib.sub.mod",
        "pkg.sub.other": "pkg.lib.sub.other",
    }
    assert renames.get("pkg.sub.mod.fn") == "pkg.lib.sub.mod.fn"
    assert renames.get("pkg.subway") is None and renames.get("pkg.app") is None


@pytest.mark.parametrize(
    ("moves", "message"),
    [
        ([], "nothing to do"),
        ([Move("pkg.nope", "pkg.x")], "no module or package 'pkg.nope'"),
        ([Move("pkg.mod", "pkg.x")], "did you mean pkg.sub.mod"),
        ([Move("pkg.sub.mod", "pkg.core.base")], "'pkg.core.base' exists already"),
        ([Move("pkg.sub", "pkg.sub.inner")], "cannot move into itself"),
        ([Move("pkg.app", "pkg.app")], "already there"),
        ([Move("pkg.sub.mod", "pkg.app.mod")], "'pkg.app' is a module, not a package"),
        (
            [Move("pkg.sub.mod", "pkg.x"), Move("pkg.sub.other", "pkg.x")],
            "two moves to one target",
        ),
        (
            [Move("pkg.sub", "pkg.lib"), Move("pkg.sub.mod", "pkg.y")],
            "'pkg.sub.mod' is inside 'pkg.sub'",
        ),
        (
            [Move("pkg.app", "pkg.web"), Move("pkg.sub.mod", "pkg.web.mod")],
            "'pkg.web' becomes a module",
        ),
    ],
)
def test_impossible_plans_are_refused(moves: list[Move], message: str) -> None:
    with pytest.raises(RestructureError, match=message.replace(".", r"\.")):
        check(moves, MODULES)


def test_plan_files() -> None:
    moves, command = parse_plan(
        '''test_command = "pytest -q"
[[move]]
from = "pkg.sub.mod"
to = "pkg.core.mod"
''',
        "plan.toml",
    )
    assert moves == [Move("pkg.sub.mod", "pkg.core.mod")] and command == "pytest -q"
    with pytest.raises(RestructureError, match="plan.toml: no moves"):
        parse_plan("", "plan.toml")
    with pytest.raises(RestructureError, match="plan.toml: not valid TOML"):
        parse_plan("[[move]\n", "plan.toml")
    with pytest.raises(RestructureError, match=r"plan.toml: Object contains unknown field `form`"):
        parse_plan('[[move]]\nform = "a"\nto = "b"\n', "plan.toml")
    with pytest.raises(RestructureError, match="plan.toml: move 1"):
        parse_plan('[[move]]\nfrom = "a b"\nto = "b"\n', "plan.toml")
