"""The isolated worker of the analysis: runs grimp's import scanner and the
full parse of newer syntax, where a crash costs only a process.

Run as a *script*, never imported by corral's own process for its work:
``python -I <this file>`` with a JSON job on stdin. ``-I`` keeps the
current directory, ``PYTHON*`` variables and the user's site out of
``sys.path``, and the analysed files are read as data, never imported, so no
module of the analysed tree can run here, whatever its name (``textwrap``,
``grimp`` …). It imports nothing from corral (importing ``corral`` would
cost the start-up of the whole engine); :mod:`.facts` is loaded by path.

Why a process at all: grimp's Rust parser overflows its stack on some
pathological files (a 300,000-term ``1 + 1 + …`` expression) and panics on
others (a relative import that climbs two levels above its top package);
libcst's native parser overflows on deep nesting. A panic is caught here and
the chunk bisected down to the file; a crash kills this process, and the
parent (:mod:`.isolation`) bisects the chunk that was running. So one bad
file is listed as not analysed and every other file still counts.

Protocol: the job is ``{"mode": "imports" | "facts", "shared": {...},
"chunks": [[item, ...], ...]}``; for each chunk this writes one line
``{"begin": k}`` before the work and one line ``{"done": k, "results":
[...]}`` after it (one result per item, in order), then ``{"end": true}``.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import io
import re
import select
import sys
import tokenize
from pathlib import Path
from typing import Any

import msgspec  # a dependency of corral's, not of the analysed code

_Result = dict[str, Any]

# --------------------------------------------------------------------------
# Reading a file as Python does
# --------------------------------------------------------------------------


def read_source(path: str) -> str:
    """The file's text, decoded as the interpreter would (PEP 263 cookie or
    BOM, else UTF-8). Raises ``OSError``/``UnicodeDecodeError``/``SyntaxError``."""
    data = Path(path).read_bytes()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


# --------------------------------------------------------------------------
# The import statements on a line, as written (grimp gives the line of each
# import it found; this reads what that line imports, to tell an import of a
# missing module from one of a name defined in a package)
# --------------------------------------------------------------------------

_STRING_OR_COMMENT = re.compile(
    r"'''.*?(?:'''|\Z)|\"\"\".*?(?:\"\"\"|\Z)|'(?:[^'\\\n]|\\.)*(?:'|$)"
    r"|\"(?:[^\"\\\n]|\\.)*(?:\"|$)|\#[^\n]*",
    re.M | re.S,
)
_KEYWORD = re.compile(r"(?<![\w.])(from|import)\b")
_FROM = re.compile(r"from\s+(\.*\s*[\w.]*?)\s*(?<![\w.])import\b")
_DOTTED = re.compile(r"\s*([A-Za-z_\x80-\U0010ffff][\w.\s]*?)\s*(?:\bas\s+\w+\s*)?(?:,|;|$)")


def _blank(match: re.Match[str]) -> str:
    return "" if match.group().startswith("#") else "''"


def statement_text(lines: list[str], line: int) -> str:
    """The logical line that starts at ``line`` (1-based): physical lines
    joined while brackets are open or a line ends with a backslash."""
    out: list[str] = []
    depth = 0
    i = line - 1
    while 0 <= i < len(lines) and len(out) < 200:
        text = _code_only(lines[i])
        out.append(text)
        depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
        if depth <= 0 and not text.rstrip().endswith("\\"):
            break
        i += 1
    return " ".join(part.rstrip().removesuffix("\\") for part in out)


def raw_imports(text: str) -> list[list[str]]:
    """``[["import", "a.b"], ["from", "..x"], ...]`` for the statements in a
    logical line: ``import`` names in full, ``from`` statements by their
    module part (with its leading dots)."""
    found: list[list[str]] = []
    pos = 0
    while True:
        m = _KEYWORD.search(text, pos)
        if m is None:
            return found
        if m.group(1) == "from":
            f = _FROM.match(text, m.start())
            if f is None:
                pos = m.end()
                continue
            found.append(["from", re.sub(r"\s+", "", f.group(1))])
            pos = f.end()
            # skip the imported names: they end the statement
            end = text.find(";", pos)
            pos = len(text) if end < 0 else end
            continue
        pos = m.end()
        while True:
            d = _DOTTED.match(text, pos)
            if d is None or not d.group(1):
                break
            found.append(["import", re.sub(r"\s+", "", d.group(1))])
            pos = d.end()
            if text[pos - 1 : pos] != ",":
                break


# --------------------------------------------------------------------------
# Imports: grimp's scanner on an in-memory file system
# --------------------------------------------------------------------------


class _Imports:
    """grimp's scanner, told which modules exist and where each package is.

    Plain UTF-8 files are read by grimp itself, in parallel (its real file
    system, the package directories of the tree); any other encoding is
    decoded here and handed over in memory (its in-memory file system, which
    trims what it is given: a first line is added, and every line number is
    corrected by one).
    """

    def __init__(self, shared: dict[str, Any]) -> None:
        import grimp._rustgrimp as rust  # type: ignore[import-not-found]
        from grimp.application.ports.modulefinder import FoundPackage, ModuleFile
        from grimp.domain.valueobjects import Module
        from grimp.exceptions import SourceSyntaxError

        self.rust = rust
        self.SourceSyntaxError = SourceSyntaxError
        self.exclude_type_checking = bool(shared["exclude_type_checking"])
        self.module_files = {
            name: ModuleFile(module=Module(name), mtime=0.0) for name in shared["modules"]
        }
        self.tops = {name.split(".")[0] for name in shared["modules"]}
        by_top: dict[str, list[Any]] = {}
        for name, mf in self.module_files.items():
            by_top.setdefault(name.split(".")[0], []).append(mf)
        dirs: dict[str, str] = shared["dirs"]
        self.found_real = {
            FoundPackage(name=top, directory=dirs[top], module_files=frozenset(files))
            for top, files in by_top.items()
        }
        self.found_virtual = {
            FoundPackage(name=top, directory=f"/{top}", module_files=frozenset(files))
            for top, files in by_top.items()
        }

    def run(self, items: list[list[Any]]) -> list[_Result]:
        """``items`` are ``[module, virtual path, real path, plain UTF-8]``
        (whether grimp may read the file itself, see ``discover.plain_utf8``)."""
        results: dict[str, _Result] = {}
        real: list[tuple[str, str, str]] = []
        virtual: list[tuple[str, str, str]] = []
        texts: dict[str, str] = {}
        for name, vpath, path, plain in items:
            if plain:
                real.append((name, path, path))
                continue
            try:
                texts[name] = read_source(path)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
                results[name] = {"error": "unreadable", "message": str(exc)}
                continue
            virtual.append((name, vpath, path))
        self._scan(real, texts, results, in_memory=False)
        self._scan(virtual, texts, results, in_memory=True)
        return [results[item[0]] for item in items]

    def _scan(
        self,
        items: list[tuple[str, str, str]],
        texts: dict[str, str],
        results: dict[str, _Result],
        *,
        in_memory: bool,
    ) -> None:
        """``items`` are ``(module, path grimp sees, path on disk)``."""
        pending = list(items)
        shift = 1 if in_memory else 0
        while pending:
            by_path = {seen: name for name, seen, _ in pending}
            if in_memory:
                contents = {seen: "#\n" + texts[name] for name, seen, _ in pending}
                file_system = self.rust.FakeBasicFileSystem(content_map=contents)
            else:
                file_system = self.rust.RealBasicFileSystem()
            try:
                found = self.rust.scan_for_imports(
                    module_files=tuple(self.module_files[name] for name, _, _ in pending),
                    found_packages=self.found_virtual if in_memory else self.found_real,
                    include_external_packages=True,
                    exclude_type_checking_imports=self.exclude_type_checking,
                    file_system=file_system,
                )
            except self.SourceSyntaxError as exc:
                name = by_path.get(exc.filename)
                if name is None:
                    raise
                line = exc.lineno - shift if exc.lineno else None
                results[name] = {"error": "syntax", "line": line, "text": exc.text or ""}
                pending = [item for item in pending if item[0] != name]
                continue
            except BaseException as exc:
                if type(exc).__name__ != "PanicException":
                    raise
                if len(pending) == 1:
                    results[pending[0][0]] = {"error": "panic", "message": str(exc)}
                    return
                half = len(pending) // 2
                self._scan(pending[:half], texts, results, in_memory=in_memory)
                self._scan(pending[half:], texts, results, in_memory=in_memory)
                return
            disk = {name: path for name, _, path in pending}
            for module, imports in found.items():
                name = module.name
                results[name] = self._result(name, imports, disk[name], texts.get(name), shift)
            return

    def _result(self, name: str, imports: Any, path: str, text: str | None, shift: int) -> _Result:
        edges: dict[tuple[str, int], None] = {}
        first_lines: dict[int, str] = {}
        for imp in imports:
            imported, line = imp.imported.name, imp.line_number - shift
            edges[(imported, line)] = None
            if imported.split(".")[0] in self.tops:  # only these can be unresolved
                first_lines[line] = imp.line_contents
        lines: list[str] | None = None
        raw: dict[str, list[list[str]]] = {}
        for line, first in first_lines.items():
            found = _whole_line(first)
            if found is None:  # a statement over several lines: read them
                if lines is None:
                    try:
                        lines = (text if text is not None else read_source(path)).splitlines()
                    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                        lines = []
                found = raw_imports(statement_text(lines, line)) if lines else []
            raw[str(line)] = found
        return {
            "imports": [[imported, line] for imported, line in sorted(edges)],
            "statements": raw,
        }


def _code_only(text: str) -> str:
    if "'" in text or '"' in text or "#" in text:
        return _STRING_OR_COMMENT.sub(_blank, text)
    return text


@functools.lru_cache(maxsize=4096)
def _whole_line(line: str) -> list[list[str]] | None:
    """The imports of a physical line, when it tells them all: whole
    statements, or a ``from x import (`` whose names go on below (only the
    module part matters). ``None`` when the lines after it are needed.
    Cached: the same import lines recur across a project's files."""
    code = _code_only(line).rstrip()
    if not code.endswith("\\") and all(code.count(o) == code.count(c) for o, c in _PAIRS):
        return raw_imports(code)
    start = code.lstrip()
    if start.startswith("from") and ";" not in start:
        found = raw_imports(start)
        if len(found) == 1 and found[0][0] == "from":
            return found
    return None


_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"))


# --------------------------------------------------------------------------
# Facts of newer syntax: libcst
# --------------------------------------------------------------------------


class _Facts:
    def __init__(self, shared: dict[str, Any]) -> None:
        spec = importlib.util.spec_from_file_location(
            "_corral_facts", Path(__file__).with_name("facts.py")
        )
        assert spec is not None and spec.loader is not None
        self.facts = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.facts)

    def run(self, items: list[str]) -> list[_Result]:
        out: list[_Result] = []
        for path in items:
            try:
                text = read_source(path)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
                out.append({"error": "unreadable", "message": str(exc)})
                continue
            out.append({"facts": list(self.facts.cst_facts(text))})
        return out


#: A spare child (started ahead, see ``isolation.prestart``) nobody gave a
#: job to within this many seconds exits.
IDLE_SECONDS = 60.0


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "imports":  # imported while the parent still prepares the job
        import grimp._rustgrimp  # noqa: F401

        # Tens of thousands of import records, none in a cycle, in a process
        # that lives for one job: the cycle collector would only slow it.
        gc.disable()
    try:
        if not select.select([sys.stdin], [], [], IDLE_SECONDS)[0]:
            return
    except (OSError, ValueError):  # no select() on this pipe (Windows): just wait
        pass
    text = sys.stdin.buffer.read()
    if not text:  # the parent went away before it had a job
        return
    job = msgspec.json.decode(text)
    worker = _Imports(job["shared"]) if job["mode"] == "imports" else _Facts(job["shared"])
    out = sys.stdout.buffer
    encode = msgspec.json.encode
    for k, chunk in enumerate(job["chunks"]):
        out.write(b'{"begin": %d}\n' % k)
        out.flush()
        results = worker.run(chunk)
        out.write(encode({"done": k, "results": results}) + b"\n")
        out.flush()
    out.write(b'{"end": true}\n')
    out.flush()


if __name__ == "__main__":
    main()
