"""Per-file facts: the fast path equals a full parse, file for file."""

from __future__ import annotations

import ast
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from corral.plugins.builtin.architecture.facts import (
    ast_facts,
    count_loc,
    cst_facts,
    file_facts,
    tokens_only_facts,
)


def _loc(text: str) -> int:
    """The definition: lines (split on newlines) neither blank nor comment-only."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def _reference(text: str) -> tuple[int, int, int]:
    """The rule, from a full :mod:`ast` parse (what corral computed before)."""
    facts = ast_facts(text)
    assert facts is not None
    return facts


TRICKY = [
    "class A: pass\n",
    "x = 'class B:'\nclass C(object):\n    '''class D(ABC):'''\n",
    '"""\nclass Doc(ABC):\n"""\n# class Comment(ABC):\nclass Real(ABC): pass\n',
    "class P(typing.Protocol[T]):\n    ...\n",
    "class M(Base,\n        metaclass=abc.ABCMeta):  # a header on two lines\n    pass\n",
    "class N(Base, metaclass=Meta): pass\nclass_ = 1\nclassify = 2\n",
    "s = '''\\\nclass X(ABC): pass'''\nclass Y:\n    pass\n",
    "class Q(ABC if cond else object): pass\nclass R(get().ABC): pass\n",
    "class S(mod.sub.Protocol[T][U]): pass\n",
    "def f():\n    class Inner(ABC): pass\n    return Inner\n",
    "x = f'{a!r:>{width}}' + f'{{literal}}'\nclass T: pass\n",
    "class U:\n    @abc.abstractmethod\n    def f(self): ...\n",
    "class V:\n    if x:\n        @abstractmethod\n        def f(self): ...\n",
    "class W:\n    @abstractmethod()\n    def f(self): ...\n",
    "class X1:\n    class Y1:\n        @abstractproperty\n        def p(self): ...\n",
    "r = rb'\\x00' + br'''class Z(ABC):'''\n",
    "class \\\n  Wrapped(ABC): pass\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_fast_path_equals_a_full_parse_on_tricky_code(text: str) -> None:
    assert file_facts(text) == _reference(text)
    assert count_loc(text) == _loc(text)


# A class abstract by a method: read from the indentation, no full parse.
METHOD_SHAPES = [
    "class A:\n    '''doc'''\n    @abc.abstractmethod\n    def f(self): ...\n"
    "    def g(self): ...\nclass B(A):\n    def f(self): return 1\n",
    "class C:\n    @property\n    @ abstractmethod\n    async def f(self): ...\n",
    "class D:\n    @abstractmethod\n    # a comment between\n\n    def f(self): ...\n",
    "class E:\n    x = (a\n    @ abstractmethod\n    )  # a product, not a decorator\n    def f(self): ...\n",
    "class F:\n    @abstractmethod\n    class G:\n        pass\n",
    "class H:\n    def f(self):\n        @abstractmethod\n        def g(): ...\n        return g\n",
    "class I:\n    s = '''\n@abstractmethod\ndef x(): ...'''\n    @abstractmethod\n    def f(self): ...\n",
    "class J: pass\n@abstractmethod\ndef k(): ...\n",
    "class K:\n    class L:\n        pass\n    @abstractmethod\n    def f(self): ...\n",
    "class M(Base,\n        Other):\n    @abstractproperty\n    def p(self): ...\nclass N(ABC): pass\n",
    "class O:\n    if x:\n        pass\n    else:\n        @abstractmethod\n        def f(self): ...\n",
]

# Shapes the indentation reading does not follow: the whole file is parsed.
PARSED_SHAPES = [
    "class P:\n\t@abstractmethod\n\tdef f(self): ...\n",
    "class Q:\n    @(abstractmethod)\n    def f(self): ...\n",
    "class R:\n    @abc.\\\n        abstractmethod\n    def f(self): ...\n",
    "class S:\n    @abstractmethod()\n    def f(self): ...\n",
    "class T:\n    x = (a\n@ abstractmethod)  # a product, not a decorator\n    def f(self): ...\n",
    "class U:\n    @register(\n        abc.abstractmethod)\n    def f(self): ...\n",
]


@pytest.mark.parametrize("text", METHOD_SHAPES + PARSED_SHAPES)
def test_abstract_methods_read_from_indentation_equal_a_full_parse(text: str) -> None:
    assert file_facts(text) == _reference(text)


@pytest.mark.parametrize("text", METHOD_SHAPES)
def test_common_abstract_method_shapes_need_no_full_parse(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.plugins.builtin.architecture import facts

    expected = _reference(text)
    monkeypatch.setattr(facts, "ast_facts", lambda *a: pytest.fail("parsed the whole file"))
    assert facts.file_facts(text) == expected


def _corpus() -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    for sub in ("asyncio", "email", "json", "importlib", "unittest", "collections", "concurrent"):
        files += sorted((lib / sub).rglob("*.py"))
    files += [lib / name for name in ("abc.py", "typing.py", "numbers.py", "enum.py", "ast.py")]
    return files


def test_fast_path_equals_a_full_parse_on_the_standard_library() -> None:
    checked = 0
    for file in _corpus():
        text = file.read_text(encoding="utf-8")
        assert file_facts(text) == _reference(text), file
        checked += 1
    assert checked > 100


NEWER = {
    "pep695": "type X = list[int]\nclass C[T](Base):\n    @abstractmethod\n    def f(self): ...\n",
    "pep695_odd": "type X = list[int]\nclass C[T](Base):\n    @(abstractmethod)\n    def f(self): ...\n",
    "fstring312": 'class A(ABC): pass\nx = f"{d["k"]}"\n',
    "tstring": "class B(Protocol): pass\nx = t'{y}'\n",
}


@pytest.mark.parametrize("name", sorted(NEWER))
def test_newer_syntax_goes_to_the_full_parser(name: str) -> None:
    text = NEWER[name]
    assert cst_facts(text) == (count_loc(text), 1, 1)
    fast = file_facts(text)
    if sys.version_info < (3, 12) and name in ("pep695_odd", "fstring312"):
        assert fast is None  # only a parser of newer syntax can tell
    else:  # a balanced t-string, a plain decorator: no parser needed at all
        assert fast == cst_facts(text)


def test_a_file_no_parser_reads_keeps_what_the_tokens_tell() -> None:
    text = "class A(ABC):\n    def (:\n"
    assert cst_facts(text) == tokens_only_facts(text) == (2, 1, 0)


def test_header_type_parameters_do_not_hide_the_bases() -> None:
    text = textwrap.dedent(
        """\
        class Box[T: (int, str), *Ts](collections.abc.Sized, Protocol[T]):
            pass
        """
    )
    assert file_facts(text) == (2, 1, 1)
    assert ast.parse("x = 1")  # (ast itself stays available for the reference)
