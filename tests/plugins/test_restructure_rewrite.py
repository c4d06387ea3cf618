"""One file rewritten for a plan: every import form, strings, prose,
formatting kept, and what cannot be rewritten reported."""

from __future__ import annotations

import textwrap

import pytest

from corral.errors import RestructureError
from corral.plugins.builtin.restructure.moves import Renames, check, parse_move
from corral.plugins.builtin.restructure.rewrite import rewrite_source

MODULES = {
    "pkg": True,
    "pkg.sub": True,
    "pkg.sub.mod": False,
    "pkg.sub.other": False,
    "pkg.core": True,
    "pkg.util": True,
    "pkg.util.text": False,
    "pkg.app": False,
    "solo": False,
}


def renames(*moves: str) -> Renames:
    return check([parse_move(m) for m in moves], MODULES)


PLAN = renames("pkg.sub.mod=pkg.core.mod", "pkg.util=pkg.lib.util", "solo=pkg.solo")


def rewrite(src: str, module: str | None = "pkg.app", new: str | None = None, **kw: object):
    return rewrite_source(
        textwrap.dedent(src),
        path="x.py",
        renames=PLAN,
        module_old=module,
        module_new=new if new is not None else module,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ("import pkg.sub.mod\n", "import pkg.core.mod\n", "import"),
        ("import pkg.sub.mod as m\n", "import pkg.core.mod as m\n", "import"),
        ("import solo\n", "import pkg.solo as solo\n", "import"),
        ("import solo as s\n", "import pkg.solo as s\n", "import"),
        ("from pkg.sub import mod\n", "from pkg.core import mod\n", "from"),
        ("from pkg.sub.mod import f, g as h\n", "from pkg.core.mod import f, g as h\n", "from"),
        ("from pkg.util.text import *\n", "from pkg.lib.util.text import *\n", "from"),
        ("from pkg import util\n", "from pkg.lib import util\n", "from"),
        ("from .sub import mod\n", "from .core import mod\n", "relative"),
        ("from .sub.mod import f\n", "from .core.mod import f\n", "relative"),
        ("from .util.text import f\n", "from .lib.util.text import f\n", "relative"),
        ('patch("pkg.sub.mod.f")\n', 'patch("pkg.core.mod.f")\n', "string"),
        ("import_module('pkg.util')\n", "import_module('pkg.lib.util')\n", "string"),
    ],
)
def test_each_import_form(before: str, after: str, kind: str) -> None:
    out = rewrite(before)
    assert out.source == after
    assert out.changed and out.counts[kind] == 1


def test_attributes_of_a_plainly_imported_module_follow_it() -> None:
    out = rewrite(
        """\
        import pkg.sub.mod
        x = pkg.sub.mod.f(pkg.sub.mod.CONST)
        pkg = object()  # (a later rebinding is not followed: names are not tracked)
        """
    )
    assert "x = pkg.core.mod.f(pkg.core.mod.CONST)" in out.source
    assert out.counts["attribute"] == 2


def test_an_unrelated_attribute_chain_is_left_alone() -> None:
    src = "import os\nfrom pkg.sub import other\nx = other.mod.f\ny = os.path\n"
    out = rewrite(src)
    assert out.source == src and not out.changed


def test_a_partly_moved_from_import_is_split() -> None:
    out = rewrite("from pkg.sub import mod as m, other  # both\n")
    assert out.source == "from pkg.core import mod as m  # both\nfrom pkg.sub import other\n"


def test_a_renamed_module_keeps_its_binding() -> None:
    plan = check([parse_move("pkg.sub.mod=pkg.core.engine")], MODULES)
    out = rewrite_source(
        "from pkg.sub import mod\nmod.f()\n", path="x.py", renames=plan, module_old="pkg.app"
    )
    assert out.source == "from pkg.core import engine as mod\nmod.f()\n"


def test_imports_inside_functions_and_type_checking() -> None:
    out = rewrite(
        """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg.sub.mod import Thing
        def f():
            import pkg.util.text as t
            return t
        """
    )
    assert "    from pkg.core.mod import Thing\n" in out.source
    assert "    import pkg.lib.util.text as t\n" in out.source


def test_a_moved_file_recomputes_its_relative_imports() -> None:
    out = rewrite(
        "from . import other\nfrom .other import z\nfrom .. import util\nfrom ..app import run\n",
        module="pkg.sub.mod",
        new="pkg.core.mod",
    )
    assert out.source == (
        "from ..sub import other\nfrom ..sub.other import z\n"
        "from ..lib import util\nfrom ..app import run\n"
    )


def test_a_relative_import_leaving_the_top_package_becomes_absolute() -> None:
    plan = check([parse_move("pkg.sub.mod=other.mod")], {**MODULES, "other": True})
    out = rewrite_source(
        "from .other import z\n", path="x.py", renames=plan,
        module_old="pkg.sub.mod", module_new="other.mod",
    )
    assert out.source == "from pkg.sub.other import z\n"


def test_docstrings_and_comments() -> None:
    out = rewrite(
        '''\
        """Helpers for pkg.sub.mod (not pkg.sub.modern)."""
        X = 1  # see pkg.util.text.shout
        '''
    )
    assert "Helpers for pkg.core.mod (not pkg.sub.modern)." in out.source
    assert "# see pkg.lib.util.text.shout" in out.source
    assert out.counts["prose"] == 2


def test_formatting_is_kept_outside_the_changes() -> None:
    src = textwrap.dedent(
        """\
        # header comment
        from pkg.util.text import (  # why
            a,   # first
            b,
        )


        def   odd( x ):   return x  # spacing kept
        """
    )
    out = rewrite(src)
    assert out.source == src.replace("pkg.util.text", "pkg.lib.util.text")


def test_dynamic_imports_are_warnings_with_their_line() -> None:
    out = rewrite("import importlib\n\nmod = importlib.import_module(name)\n__import__(f'{x}')\n")
    assert out.warnings == [
        (3, "dynamic import (importlib.import_module): not rewritten, check it by hand"),
        (4, "dynamic import (__import__): not rewritten, check it by hand"),
    ]
    assert not out.changed


def test_a_file_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(RestructureError, match=r"x.py:2: cannot be rewritten, it does not parse"):
        rewrite("import pkg.sub.mod\ndef (:\n")


def test_a_script_outside_packages_has_only_absolute_imports() -> None:
    out = rewrite("from pkg.sub.mod import f\nfrom . import x\n", module=None)
    assert out.source == "from pkg.core.mod import f\nfrom . import x\n"


def test_all_of_a_package_follows_its_moved_submodules() -> None:
    plan = renames("pkg.sub.mod=pkg.core.mod", "pkg.sub.other=pkg.sub.renamed")
    src = textwrap.dedent(
        """\
        __all__ = [
            "mod",  # leaves the package
            "other",
            'kept',
        ]
        __all__ += ("other",)
        """
    )
    done = rewrite_source(
        src, path="pkg/sub/__init__.py", renames=plan, module_old="pkg.sub",
        module_new="pkg.sub", is_package=True,
    )
    assert done.source == textwrap.dedent(
        """\
        __all__ = [
            "renamed",
            'kept',
        ]
        __all__ += ("renamed",)
        """
    )
    assert done.counts["__all__"] == 3
    assert done.warnings == [
        (1, "__all__ named submodule 'mod', which moves to pkg.core.mod: taken out "
            "(`from pkg.sub import *` no longer brings it)")
    ]


def test_all_keeps_a_name_the_package_still_binds() -> None:
    plan = renames("pkg.sub.mod=pkg.core.mod")
    src = 'from . import mod\n__all__ = ["mod"]\n'
    done = rewrite_source(
        src, path="pkg/sub/__init__.py", renames=plan, module_old="pkg.sub",
        module_new="pkg.sub", is_package=True,
    )
    assert done.source == 'from ..core import mod\n__all__ = ["mod"]\n'
    assert done.warnings == []
    # (a module's __all__ names its own definitions, never a submodule)
    plain = rewrite_source(
        '__all__ = ["mod"]\n', path="pkg/app.py", renames=plan, module_old="pkg.app",
        module_new="pkg.app",
    )
    assert not plain.changed
