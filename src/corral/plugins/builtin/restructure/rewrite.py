"""One file's source, rewritten for a plan's renames (libcst).

libcst keeps every byte outside the nodes it replaces, so formatting and
comments survive. What is rewritten, by kind (the counts of the report):

- ``import``: ``import a.b.c`` and ``import a.b.c as x`` (a single-name
  module that moves keeps its binding: ``import mod`` becomes
  ``import pkg.mod as mod``);
- ``from``: ``from a.b import c`` (``c`` a moved module, or a name in a moved
  module), split in two when only some of its names moved;
- ``relative``: relative imports, resolved against the file's old place and
  written again from its new place (absolute when the target left the
  file's top-level package);
- ``attribute``: ``a.b.c.f`` where ``a`` is bound by ``import a.b.c``;
- ``string``: a string literal that is a moved dotted name
  (``mock.patch("pkg.old.fn")``, ``import_module("pkg.old")``);
- ``prose``: moved dotted names in docstrings and comments.

A dynamic import (``__import__(f"...")``, ``import_module(name)``) cannot be
rewritten safely: it is reported as a warning with its line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from corral.plugins.builtin.restructure.errors import RestructureError
from corral.plugins.builtin.restructure.moves import Renames

__all__ = ["FileRewrite", "rewrite_source"]

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass
class FileRewrite:
    """The result for one file: its new text and what changed."""

    source: str
    changed: bool
    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[tuple[int, str]] = field(default_factory=list)


def _dotted(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def _name_node(dotted: str) -> cst.Attribute | cst.Name:
    node = cst.parse_expression(dotted)
    assert isinstance(node, (cst.Attribute, cst.Name))
    return node


def _package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    """The absolute module of ``from <level dots><name> import ...`` in ``module``."""
    base = _package_of(module, is_package).split(".") if module else []
    if level - 1 > len(base) or (level - 1 == len(base) and not name):
        return None  # climbs above the top package
    parts = base[: len(base) - (level - 1)]
    if name:
        parts.append(name)
    return ".".join(parts) if parts else None


def _relative(target: str, module: str, is_package: bool) -> tuple[int, str] | None:
    """``target`` written relative to ``module`` (dots, rest), or None when
    they do not share a top-level package."""
    base = _package_of(module, is_package).split(".")
    parts = target.split(".")
    common = 0
    while common < min(len(base), len(parts)) and base[common] == parts[common]:
        common += 1
    if common == 0:
        return None
    return len(base) - common + 1, ".".join(parts[common:])


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self,
        renames: Renames,
        module_old: str | None,
        module_new: str | None,
        is_package: bool,
        roots: set[str],
    ) -> None:
        super().__init__()
        self.renames = renames
        self.old = module_old
        self.new = module_new
        self.is_package = is_package
        self.moved = module_old is not None and module_old != module_new
        self.roots = roots  # names bound by `import a.b.c` (no alias) in this file
        self.counts: Counter[str] = Counter()
        self.climbing = 0
        self._splits: dict[cst.ImportFrom, list[cst.ImportFrom]] = {}
        self._prose = renames.in_text()
        self.bound: set[str] = set()  # names the module binds at its top level
        self.all_removed: list[str] = []

    def visit_Module(self, node: cst.Module) -> bool:
        if self.is_package:
            self.bound = _bound_names(node.body)
        return True

    # -- import a.b.c [as x]

    def visit_Import(self, node: cst.Import) -> bool:
        return False  # names handled as a whole below, not as attributes

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        names = []
        changed = False
        for alias in updated.names:
            old = _dotted(alias.name)
            new = None if old is None else self.renames.get(old)
            if old is None or new is None:
                names.append(alias)
                continue
            changed = True
            self.counts["import"] += 1
            if alias.asname is None and "." not in old and new.split(".")[0] != old:
                # `import mod` bound `mod`: keep the binding
                alias = alias.with_changes(
                    asname=cst.AsName(name=cst.Name(old)),
                )
            names.append(alias.with_changes(name=_name_node(new)))
        return updated.with_changes(names=names) if changed else updated

    # -- from a.b import c

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        level = len(updated.relative)
        name = _dotted(updated.module) if updated.module is not None else None
        if level:
            if self.old is None:
                return updated  # a relative import outside a package: not ours
            source = _resolve(self.old, self.is_package, level, name)
            if source is None:
                self.climbing += 1  # (its line is found in the text: no position metadata)
                return updated
        else:
            source = name
        if source is None:
            return updated
        groups: list[tuple[str, list[cst.ImportAlias]]] = []
        star = isinstance(updated.names, cst.ImportStar)
        aliases: list[cst.ImportAlias] = [] if star else list(updated.names)  # type: ignore[arg-type]
        for alias in aliases:
            imported = _dotted(alias.name) or ""
            full = f"{source}.{imported}"
            target = self.renames.modules.get(full)
            if target is not None:  # a module that moves: from its new parent
                parent, _, last = target.rpartition(".")
                if last != imported and alias.asname is None:
                    alias = alias.with_changes(asname=cst.AsName(name=cst.Name(imported)))
                alias = alias.with_changes(name=cst.Name(last))
            else:
                parent = self.renames.get(source) or source
            if groups and groups[-1][0] == parent:
                groups[-1][1].append(alias)
            else:
                groups.append((parent, [alias]))
        if star:
            groups = [(self.renames.get(source) or source, [])]
        if [g[0] for g in groups] == [source] and not (level and self.moved):
            return updated  # nothing moved, the file stays where it is
        split = len(groups) > 1
        statements = [
            self._from(updated, parent, names, level, star, split) for parent, names in groups
        ]
        if not split and statements[0].deep_equals(updated):
            return updated  # (a moved file's relative import that reads the same)
        self.counts["relative" if level else "from"] += 1
        if len(statements) > 1:
            self._splits[original] = statements
        return statements[0]

    def _from(
        self,
        node: cst.ImportFrom,
        target: str,
        names: list[cst.ImportAlias],
        level: int,
        star: bool,
        split: bool,
    ) -> cst.ImportFrom:
        dots = 0
        rest = target
        if level:
            where = self.new if self.new is not None else self.old
            assert where is not None
            relative = _relative(target, where, self.is_package)
            if relative is not None:
                dots, rest = relative
        module = _name_node(rest) if rest else None
        changes: dict[str, Any] = {
            "module": module,
            "relative": [cst.Dot() for _ in range(dots)],
        }
        if not star:
            changes["names"] = names
        if not star and split:  # each part of a split import ends without a comma
            changes["names"] = [
                a.with_changes(comma=cst.MaybeSentinel.DEFAULT) if i == len(names) - 1 else a
                for i, a in enumerate(names)
            ]
            if len(names) == 1 and node.lpar is not None:
                changes["lpar"] = None
                changes["rpar"] = None
        return node.with_changes(**changes)

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        first = original.body[0] if len(original.body) == 1 else None
        if isinstance(first, cst.ImportFrom) and first in self._splits:
            statements = self._splits.pop(first)
            lines = [updated.with_changes(body=[statements[0]])]
            lines += [cst.SimpleStatementLine(body=[s]) for s in statements[1:]]
            return cst.FlattenSentinel(lines)
        return updated

    # -- a.b.c.f where `import a.b.c` bound `a`

    def leave_Attribute(
        self, original: cst.Attribute, updated: cst.Attribute
    ) -> cst.Attribute | cst.Name:
        dotted = _dotted(updated)
        if dotted is None or dotted.split(".")[0] not in self.roots:
            return updated
        new = self.renames.modules.get(dotted)
        if new is None:
            return updated
        self.counts["attribute"] += 1
        return _name_node(new)

    # -- __all__ of a package naming a submodule that moves

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        names = [t.target for t in updated.targets]
        if len(names) != 1 or not _is_all(names[0]):
            return updated
        return updated.with_changes(value=self._all(updated.value))

    def leave_AugAssign(self, original: cst.AugAssign, updated: cst.AugAssign) -> cst.AugAssign:
        if not _is_all(updated.target):
            return updated
        return updated.with_changes(value=self._all(updated.value))

    def _all(self, value: cst.BaseExpression) -> cst.BaseExpression:
        """A package's ``__all__`` list: a submodule that moves elsewhere in
        the same package is renamed; one that leaves it is taken out (a
        warning says so: ``from pkg import *`` no longer brings it), unless
        the file binds that name itself (an import of it keeps its name)."""
        if not self.is_package or self.old is None or not isinstance(value, (cst.List, cst.Tuple)):
            return value
        elements = []
        for element in value.elements:
            name = element.value
            entry = name.evaluated_value if isinstance(name, cst.SimpleString) else None
            if not isinstance(name, cst.SimpleString) or not isinstance(entry, str):
                elements.append(element)
                continue
            target = self.renames.modules.get(f"{self.old}.{entry}")
            if target is None or entry in self.bound:
                elements.append(element)
                continue
            parent, _, last = target.rpartition(".")
            if parent == self.new:
                self.counts["__all__"] += 1
                quoted = name.value[: len(name.prefix) + len(name.quote)] + last + name.quote
                elements.append(element.with_changes(value=name.with_changes(value=quoted)))
                continue
            self.counts["__all__"] += 1
            self.all_removed.append(
                f"__all__ named submodule {entry!r}, which moves to {target}: taken out "
                f"(`from {self.new} import *` no longer brings it)"
            )
        return value.with_changes(elements=elements)

    # -- strings, docstrings, comments

    def leave_SimpleString(
        self, original: cst.SimpleString, updated: cst.SimpleString
    ) -> cst.SimpleString:
        value = updated.evaluated_value
        if not isinstance(value, str):
            return updated
        quote_at = len(updated.prefix) + len(updated.quote)
        body = updated.value[quote_at : len(updated.value) - len(updated.quote)]
        if _DOTTED.match(value) and body == value:
            new = self.renames.get(value)
            if new is not None:
                self.counts["string"] += 1
                return updated.with_changes(
                    value=updated.value[:quote_at] + new + updated.value[quote_at + len(body) :]
                )
            return updated
        if len(updated.quote) == 3 and self._prose is not None:  # a docstring or prose
            text, n = self._prose.subn(lambda m: self.renames.modules[m.group(1)], body)
            if n:
                self.counts["prose"] += n
                return updated.with_changes(
                    value=updated.value[:quote_at] + text + updated.value[quote_at + len(body) :]
                )
        return updated

    def leave_Comment(self, original: cst.Comment, updated: cst.Comment) -> cst.Comment:
        if self._prose is None:
            return updated
        text, n = self._prose.subn(lambda m: self.renames.modules[m.group(1)], updated.value)
        if not n:
            return updated
        self.counts["prose"] += n
        return updated.with_changes(value=text)


def _is_all(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "__all__"


def _bound_names(body: Sequence[cst.BaseStatement | cst.BaseSmallStatement]) -> set[str]:
    """Names a module binds at its top level (and in its top-level ``if``,
    ``try`` and ``with`` blocks): imports, definitions, plain assignments."""
    names: set[str] = set()
    for statement in body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            names |= _bound_names(statement.body)
        elif isinstance(statement, (cst.Import, cst.ImportFrom)):
            if isinstance(statement.names, cst.ImportStar):
                continue
            for alias in statement.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names.add(alias.asname.name.value)
                elif isinstance(statement, cst.ImportFrom) or isinstance(alias.name, cst.Name):
                    names.add(_dotted(alias.name) or "")
        elif isinstance(statement, cst.Assign):
            names |= {t.target.value for t in statement.targets if isinstance(t.target, cst.Name)}
        elif isinstance(statement, (cst.If, cst.Try, cst.With)):
            blocks = [statement.body]
            if isinstance(statement, cst.Try):
                blocks += [h.body for h in statement.handlers]
            for block in blocks:
                if isinstance(block, cst.IndentedBlock):
                    names |= _bound_names(block.body)
    return names


_IMPORT_LINE = re.compile(r"^[ \t]*import[ \t]+([^#\n;]+)", re.MULTILINE)
_DYNAMIC = re.compile(r"(?<![\w.])(__import__|(?:importlib\.)?import_module)\([ \t]*(?![ \t\"'])")
_CLIMBING = re.compile(r"^[ \t]*from[ \t]+(\.+)", re.MULTILINE)


def _roots(text: str) -> set[str]:
    """The names that plain ``import a.b.c`` statements bind (read from the
    text: cheaper than a pass over the tree, and a name too many only means
    an attribute chain is looked at)."""
    roots: set[str] = set()
    for match in _IMPORT_LINE.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if len(words) == 1:
                roots.add(words[0].split(".")[0].strip("()\\"))
    return roots


_BY_HAND = "not rewritten, check it by hand"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _warnings(text: str, climbing: int) -> list[tuple[int, str]]:
    """Dynamic imports (cannot be rewritten) and, when the rewrite met
    some, relative imports that climb above their top package."""
    found = [
        (
            _line_of(text, m.start()),
            f"dynamic import ({m.group(1)}): not rewritten, check it by hand",
        )
        for m in _DYNAMIC.finditer(text)
    ]
    if climbing:
        found += [
            (_line_of(text, m.start()), "relative import above the top package: left as is")
            for m in _CLIMBING.finditer(text)
            if len(m.group(1)) > 1
        ][:climbing]
    return found


def rewrite_source(
    text: str,
    *,
    path: str,
    renames: Renames,
    module_old: str | None = None,
    module_new: str | None = None,
    is_package: bool = False,
) -> FileRewrite:
    """``text`` (the file at ``path``) rewritten for ``renames``. ``module_old``
    and ``module_new`` are the file's module before and after the plan (None
    for a file outside any package, such as a script)."""
    try:
        tree = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise RestructureError(
            f"{path}:{exc.raw_line}: cannot be rewritten, it does not parse: {exc.message}"
        ) from None
    except RecursionError:
        raise RestructureError(f"{path}: cannot be rewritten: nested too deeply to parse") from None
    rewriter = _Rewriter(
        renames,
        module_old,
        module_new if module_new is not None else module_old,
        is_package,
        _roots(text),
    )
    source = tree.visit(rewriter).code
    warnings = _warnings(text, rewriter.climbing)
    warnings += [(_all_line(text), message) for message in dict.fromkeys(rewriter.all_removed)]
    return FileRewrite(source, source != text, rewriter.counts, sorted(warnings))


def _all_line(text: str) -> int:
    """The line of the first ``__all__`` assignment (1 when there is none)."""
    found = re.search(r"^__all__\b", text, re.MULTILINE)
    return _line_of(text, found.start()) if found else 1
