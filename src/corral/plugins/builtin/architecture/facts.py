"""Per-file facts: lines of code, classes and abstract classes, for any syntax.

Why not :mod:`ast` on every file: the interpreter running corral may be
older than the code it reads (Python 3.11's ``ast`` rejects PEP 695
``type X = ...`` aliases and ``def f[T]``, 3.12's nested f-string quotes and
3.14's t-strings and ``except A, B:``), and building a Python object tree of
every file is most of a cold analysis: 6.5 s on sympy's 1,500 modules, ten
times what grimp needs for the whole import graph.

So a file is read in two ways:

- **The fast path** (almost every file). One regular expression, run in C,
  finds the string literals and comments; what lies between them is code.
  ``class`` is a hard keyword that can only start a class definition, so the
  classes are the ``class`` words in code; a class header that names ``ABC``,
  ``Protocol`` or ``ABCMeta`` is cut out and parsed alone (a few µs) to apply
  the abstract-class rule below exactly. Equivalent to a full parse for every
  file whose string literals the expression delimits as the language does,
  which holds for all syntax up to Python 3.11 (tested against ``ast`` on
  the whole standard library and large real projects: same figures, file for
  file). A file that mentions ``abstractmethod``/``abstractproperty`` needs
  the class bodies: they are read from the statements' indentation (strings
  and comments known, brackets counted), which is exact for every ordinary
  shape (checked against ``ast`` on 18,000 files: the standard library and
  the installed packages, sympy, twisted, sphinx, the generated codebase).
- **The full parse**, for the files where the fast path could be wrong: an
  f-/t-string whose braces do not balance (3.12+ lets an f-string's
  replacement field reuse its own quote, which a regular expression cannot
  follow), a class header that does not parse alone, or a class body the
  indentation reading does not follow (tabs in indentation, a decorator
  that is neither a plain dotted name nor plainly something else).
  :mod:`ast` parses it when the running interpreter knows its syntax; else
  libcst's native parser (every syntax up to 3.14) does, in an isolated
  process (:mod:`.isolation`), because it can overflow its stack on a
  pathological file.

The abstract-class rule (unchanged): a class is abstract when a base is named
``ABC`` or ``Protocol`` (a plain name, an attribute ``x.ABC``, or either
subscripted once, ``Protocol[T]``), when it has ``metaclass=ABCMeta`` (name or
attribute), or when a function defined directly in its body is decorated with
a name or attribute ``abstractmethod``/``abstractproperty``.

Nothing here judges whether a file is valid Python: the import graph
builder's parser does (see :mod:`.graph`).
"""

from __future__ import annotations

import ast
import bisect
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Facts", "ast_facts", "count_loc", "cst_facts", "file_facts", "tokens_only_facts"]

#: (lines of code, classes, abstract classes)
Facts = tuple[int, int, int]

_ABSTRACT_BASES = frozenset({"ABC", "Protocol"})
_ABSTRACT_DECORATORS = frozenset({"abstractmethod", "abstractproperty"})

# String literals (any prefix; the prefix letters are left in the code, which
# is harmless) and comments. Each string alternative is "unrolled" so long
# docstrings are consumed by one tight character-class loop. An unterminated
# literal ends at the end of its line (single quotes) or of the file (triple),
# as a tolerant tokenizer would; such a file is a syntax error anyway.
_SQ3 = r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:'''|\Z)"
_DQ3 = r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z)'
_SQ = r"'[^'\\\n]*(?:\\.[^'\\\n]*)*(?:'|$)"
_DQ = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*(?:"|$)'
# Every alternative starts with a literal character, so the regular expression
# engine skips from one candidate character to the next in a tight loop (a
# leading lookahead or group would make it try the whole pattern at every
# position: twice the time on sympy's 26 MB). A match is a class keyword
# (group ``c``), a comment (starts with ``#``) or a string literal.
_TOKENS = re.compile(
    rf"{_SQ3}|{_DQ3}|{_SQ}|{_DQ}|\#[^\n]*|c(?<![\w.]c)(?P<c>lass)\b",
    re.M | re.S,
)
# A newline, the indentation Python allows, then anything but a comment or
# more whitespace: the start of a line of code (the text gets a leading "\n").
# (The match is the newline alone: one shared one-character string per line.)
_CODE_LINE = re.compile(r"\n(?=[ \t\f]*[^\s#])")
_HEADER_MARKERS = re.compile(r"\b(?:ABC|Protocol|ABCMeta)\b")
_TYPE_PARAMS = re.compile(r"class\s+\w+\s*\[")


def count_loc(text: str) -> int:
    """Lines that are neither blank nor comment-only (a docstring's lines count)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return len(_CODE_LINE.findall("\n" + text))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _abstract_header(node: ast.ClassDef) -> bool:
    for base in node.bases:
        if _name(base.value if isinstance(base, ast.Subscript) else base) in _ABSTRACT_BASES:
            return True
    return any(kw.arg == "metaclass" and _name(kw.value) == "ABCMeta" for kw in node.keywords)


def _strip_type_params(header: str) -> str:
    """``class C[T: (int, str)](B):`` -> ``class C(B):`` (3.11 cannot parse the
    type parameters; they never affect the rule)."""
    match = _TYPE_PARAMS.match(header)
    if match is None:
        return header
    depth, i = 0, match.end() - 1
    while i < len(header):
        ch = header[i]
        depth += ch == "["
        depth -= ch == "]"
        if depth == 0:
            return header[: match.end() - 1] + header[i + 1 :]
        i += 1
    return header


def _header_is_abstract(text: str, start: int) -> bool | None:
    """Whether the class header starting at ``start`` makes the class
    abstract; ``None`` when it cannot be parsed alone (then the whole file is
    parsed)."""
    end = start
    lines: list[str] = []
    for _ in range(64):  # a header longer than 64 lines goes to the full parse
        nl = text.find("\n", end)
        stop = len(text) if nl < 0 else nl
        lines.append(text[end:stop])
        header = _strip_type_params("\n".join(lines))
        for candidate in (header + "\n pass", header):
            try:
                tree = ast.parse(candidate)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            node = tree.body[0] if len(tree.body) == 1 else None
            return _abstract_header(node) if isinstance(node, ast.ClassDef) else None
        if nl < 0:
            return None
        end = nl + 1
    return None


def _fstring_unbalanced(token: str) -> bool:
    body = token.replace("{{", "").replace("}}", "")
    return body.count("{") != body.count("}")


def file_facts(text: str) -> Facts | None:
    """(LOC, classes, abstract classes) of one file's source text, or ``None``
    when only a parser that knows syntax newer than this interpreter's can
    tell (see :func:`cst_facts`, run in an isolated process)."""
    loc = count_loc(text)
    if "class" not in text:  # no class statement: nothing else to find
        return loc, 0, 0
    classes: list[int] = []
    spans: list[tuple[int, int]] = []  # strings and comments
    for m in _TOKENS.finditer(text):
        if m.lastgroup == "c":
            classes.append(m.start())
            continue
        spans.append(m.span())
        s = m.start()
        if text[s] != "#":  # a string literal
            prefix = text[s - 2 : s].lower() if s > 1 else text[:s].lower()
            if prefix[-1:] in ("f", "t") or prefix in ("fr", "tr"):
                token = m.group()
                if ("{" in token or "}" in token) and _fstring_unbalanced(token):
                    return ast_facts(text, loc)
    by_header: set[int] = set()
    if classes and ("ABC" in text or "Protocol" in text):  # (ABCMeta contains ABC)
        for k, start in enumerate(classes):
            # Only a header that names a marker (or spans lines) needs a parse.
            stop = text.find("\n", start)
            first = text[start : len(text) if stop < 0 else stop].rstrip()
            if (
                not _HEADER_MARKERS.search(first)
                and first.count("(") == first.count(")")
                and not first.endswith("\\")
            ):
                continue
            verdict = _header_is_abstract(text, start)
            if verdict is None:
                return ast_facts(text, loc)
            if verdict:
                by_header.add(k)
    if len(by_header) < len(classes) and ("abstractmethod" in text or "abstractproperty" in text):
        # A class not abstract by its header may be by a method: read the
        # class bodies by their indentation, or (when anything there is out
        # of the ordinary) parse the whole file.
        by_method = _abstract_by_methods(text, spans, classes)
        if by_method is None:
            return ast_facts(text, loc)
        by_header |= by_method
    return loc, len(classes), len(by_header)


# A decorator line naming one of the abstract decorators (a name or a dotted
# attribute, nothing else on the line), and any decorator line that mentions
# one at all: when the two counts differ, a decorator has another shape.
_ABSTRACT_DECORATOR = re.compile(
    r"^([ \t\f]*)@[ \t]*(?:[A-Za-z_]\w*[ \t]*\.[ \t]*)*abstract(?:method|property)[ \t]*$", re.M
)
_MENTION = re.compile(r"^[ \t\f]*@[^\n]*abstract(?:method|property)", re.M)
# A decorator line that goes on below (an open bracket, a backslash).
_GOES_ON = re.compile(r"^[ \t\f]*@[^\n]*(?:[(\[{][^\n]*|\\[ \t]*)$", re.M)
_WORD = re.compile(r"\babstract(?:method|property)\b")
_DEF = re.compile(r"(?:async[ \t]+)?def\b")
_BRACKETS = str.maketrans("([{)]}", "((()))")


class _Depths:
    """Brackets open at a position of ``code`` (strings and comments blanked),
    counted from the nearest position already asked about: each character
    is counted about once however many decorators a file has."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.known: list[tuple[int, int]] = [(0, 0)]

    def at(self, pos: int) -> int:
        i = bisect.bisect_right(self.known, (pos, math.inf)) - 1
        base, depth = self.known[i]
        part = self.code[base:pos].translate(_BRACKETS)
        depth += part.count("(") - part.count(")")
        self.known.insert(i + 1, (pos, depth))
        return depth

    def starts_statement(self, start: int) -> bool:
        """Whether the line starting at ``start`` begins a statement: no
        bracket open before it, and the line before does not end with a
        backslash."""
        code = self.code
        if start > 0 and code[code.rfind("\n", 0, start - 1) + 1 : start - 1].rstrip().endswith(
            "\\"
        ):
            return False
        return self.at(start) == 0


def _enclosing(depths: _Depths, start: int, indent: int) -> tuple[int, int] | None:
    """(start, indent) of the statement whose block holds the line at
    ``start`` (the nearest statement above it indented less), or ``None``
    at the top level; indent ``-1`` for one indented with tabs."""
    code = depths.code
    end = start - 1
    while end > 0:
        begin = code.rfind("\n", 0, end) + 1
        line = code[begin:end]
        body = line.lstrip(" ")
        if body.strip():
            at = len(line) - len(body)
            if at < indent and depths.starts_statement(begin):
                return begin, (-1 if body[0] in "\t\f" else at)
        end = begin - 1
    return None


def _statement_end(code: str, start: int) -> int:
    """Where the statement that starts at ``start`` ends (its last line's end)."""
    depth = 0
    pos = start
    while True:
        nl = code.find("\n", pos)
        end = len(code) if nl < 0 else nl
        line = code[pos:end].translate(_BRACKETS)
        depth += line.count("(") - line.count(")")
        if nl < 0 or (depth <= 0 and not code[pos:end].rstrip().endswith("\\")):
            return end
        pos = nl + 1


def _decorates_function(code: str, after: int, indent: int) -> bool | None:
    """Whether the decorators from ``after`` on end in a ``def``; ``None``
    when the lines are not what valid code at ``indent`` would be."""
    depth = 0
    continued = False
    for line in code[after:].split("\n"):
        body = line.lstrip(" ")
        if body.strip() and not depth and not continued:
            if body[0] in "\t\f" or len(line) - len(body) != indent:
                return None
            if not body.startswith("@"):
                return _DEF.match(body) is not None
        brackets = line.translate(_BRACKETS)
        depth += brackets.count("(") - brackets.count(")")
        continued = line.rstrip().endswith("\\")
    return False


def _abstract_by_methods(
    text: str, spans: list[tuple[int, int]], classes: list[int]
) -> set[int] | None:
    """Which classes (by their order in the file) have a function directly in
    their body decorated with a name or attribute ``abstractmethod`` /
    ``abstractproperty``, read from the statements' indentation; ``None``
    when the file holds what this reading does not follow exactly (tabs or
    form feeds in indentation, a decorator of another shape that mentions
    them): the caller then parses the file.

    Only the decorator lines are looked at: each one that starts a statement
    belongs to the nearest statement above it indented less; when that is a
    ``class`` and the decorators end in a ``def``, the class is abstract.
    ``spans`` are the (start, end) of the string literals and comments:
    strings become opaque code (a docstring is a statement; a string's
    newlines go, so a line inside one starts nothing), comments blanks, so
    positions stay those of ``text``.
    """
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        parts.append(text[pos:start])
        parts.append((" " if text[start] == "#" else "x") * (end - start))
        pos = end
    parts.append(text[pos:])
    code = "".join(parts)
    candidates = list(_ABSTRACT_DECORATOR.finditer(code))
    if len(candidates) != len(_MENTION.findall(code)):
        return None
    for m in _GOES_ON.finditer(code):  # a decorator over several lines
        if _WORD.search(code, m.start(), _statement_end(code, m.start())):
            return None
    number = {at: k for k, at in enumerate(classes)}
    depths = _Depths(code)
    found: set[int] = set()
    for m in candidates:
        indent = m.group(1)
        if "\t" in indent or "\f" in indent:
            return None
        if not depths.starts_statement(m.start()):
            continue  # inside brackets: an operator, not a decorator
        parent = _enclosing(depths, m.start(), len(indent))
        if parent is None:
            continue
        begin, at = parent
        if at < 0:
            return None
        k = number.get(begin + at)
        if k is None or not code.startswith("class", begin + at):
            continue  # in a function or another block: not directly in a class
        verdict = _decorates_function(code, m.end() + 1, len(indent))
        if verdict is None:
            return None
        if verdict:
            found.add(k)
    return found


def _is_abstract(node: ast.ClassDef) -> bool:
    if _abstract_header(node):
        return True
    return any(
        isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(_name(d) in _ABSTRACT_DECORATORS for d in item.decorator_list)
        for item in node.body
    )


def ast_facts(text: str, loc: int | None = None) -> Facts | None:
    """The facts from a full parse with :mod:`ast`; ``None`` when this
    interpreter's parser cannot read the file (newer syntax, or nesting past
    its limits): then :func:`cst_facts` decides, in an isolated process."""
    if loc is None:
        loc = count_loc(text)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    classes = _class_nodes(tree)
    return loc, len(classes), sum(1 for c in classes if _is_abstract(c))


def _class_nodes(tree: ast.Module) -> list[ast.ClassDef]:
    """Every class statement, at any depth. A class definition is a statement,
    so only statement lists are walked: several times faster than
    :func:`ast.walk`, which visits every expression too."""
    found: list[ast.ClassDef] = []
    todo: list[list[ast.stmt]] = [tree.body]
    while todo:
        for node in todo.pop():
            if isinstance(node, ast.ClassDef):
                found.append(node)
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if block:
                    todo.append(block)
            for handler in getattr(node, "handlers", ()):
                todo.append(handler.body)
            for case in getattr(node, "cases", ()):
                todo.append(case.body)
    return found


# --------------------------------------------------------------------------
# The full parse of newer syntax (libcst; only ever in an isolated process:
# its native parser can overflow the stack on a pathological file)
# --------------------------------------------------------------------------


def _cst_name(node: Any) -> str:
    import libcst as cst

    if isinstance(node, cst.Attribute):
        return str(node.attr.value)
    return str(node.value) if isinstance(node, cst.Name) else ""


def _cst_abstract(node: Any) -> bool:
    import libcst as cst

    for arg in node.bases:
        value = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
        if _cst_name(value) in _ABSTRACT_BASES:
            return True
    if any(
        arg.keyword is not None
        and arg.keyword.value == "metaclass"
        and _cst_name(arg.value) == "ABCMeta"
        for arg in node.keywords
    ):
        return True
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    return any(
        isinstance(item, cst.FunctionDef)
        and any(_cst_name(d.decorator) in _ABSTRACT_DECORATORS for d in item.decorators)
        for item in body
    )


def cst_facts(text: str) -> Facts:
    """The facts from libcst's native parser (any syntax up to Python 3.14).

    A file it cannot parse keeps the class count of the tokens without the
    body rule: whether it is valid Python is the graph builder's call, and
    its imports still count. Run it only in a process that may crash.
    """
    import libcst as cst

    loc = count_loc(text)
    try:
        module = cst.parse_module(text)
    except Exception:  # a syntax error, or what the parser does on a pathological file
        return tokens_only_facts(text, loc)
    classes = abstract = 0
    todo: list[Any] = [module]
    while todo:  # iterative: a deeply nested file must not exhaust the stack
        node = todo.pop()
        if isinstance(node, cst.ClassDef):
            classes += 1
            abstract += _cst_abstract(node)
        todo.extend(node.children)
    return loc, classes, abstract


def tokens_only_facts(text: str, loc: int | None = None) -> Facts:
    """What is known without any parser: LOC and the class count."""
    if loc is None:
        loc = count_loc(text)
    classes = sum(1 for m in _TOKENS.finditer(text) if m.lastgroup == "c")
    return loc, classes, 0


def collect(
    modules: list[tuple[str, str]],
    read: Callable[[str], str | None],
    memo: dict[str, Any] | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Facts], list[tuple[str, str]]]:
    """Facts of ``modules`` (``(digest, path)`` pairs): ``(facts by digest,
    the pairs only a newer parser can tell)`` (see :func:`cst_facts`).

    ``read(path)`` returns the decoded text, or ``None`` when the file is gone
    (it is then left out). ``memo`` maps digests to facts of earlier runs: a
    file found there is not read again. On return it holds the facts of the
    files seen (the deferred ones are added by the caller), so saving it keeps
    it bounded.
    """
    known = dict(memo) if memo is not None else {}
    if memo is not None:
        memo.clear()
    out: dict[str, Facts] = {}
    deferred: list[tuple[str, str]] = []
    total = len(modules)
    for done, (digest, path) in enumerate(modules, 1):
        if on_file is not None and done % 100 == 0:
            on_file(done, total)
        hit = known.get(digest)
        if isinstance(hit, list) and len(hit) == 3 and all(type(x) is int for x in hit):
            facts: Facts | None = (hit[0], hit[1], hit[2])
        else:
            text = read(path)
            if text is None:
                continue
            facts = file_facts(text)
        if facts is None:
            deferred.append((digest, path))
            continue
        out[digest] = facts
        if memo is not None:
            memo[digest] = list(facts)
    return out, deferred
