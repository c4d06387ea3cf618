"""A synthetic but realistic Python codebase for the analysis case.

``generate(dest, modules=1500, seed=5)`` writes, deterministically (a seeded
``random.Random``, sorted iteration only), a ``src`` layout with two top-level
packages, each split into five layers that are sub-packages with nested
sub-packages of their own, and exactly ``modules`` ``.py`` files (package
``__init__.py`` files included, which is how grimp and ``corral analyze``
count modules).

Why synthetic: the analysis figures must be comparable between runs and
machines, need a known module count to check the report against, and must
not depend on what happens to be installed. Why realistic: grimp's cost and
corral's both depend on what the files contain, so the bodies look like real
code: 20-80 lines, imports at the top, inside functions, in ``try`` blocks
and under ``if TYPE_CHECKING:``, absolute and relative imports, classes
including ABCs, Protocols and dataclasses.

Structure: every import normally points *down* the layers (or, inside a
layer, to a module created later), so the graph is a DAG, and then a few
deliberate upward imports (lazy, in functions, as real code hides them) and
a few import cycles are added and listed in :class:`GeneratedTree`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYERS", "GeneratedTree", "Module", "edit_one_file", "generate"]

# Top-level package -> its layers, top (may import everything below) to bottom.
# "beacon" sits on top of "atlas" and may import any of its layers.
LAYERS: dict[str, tuple[str, ...]] = {
    "beacon": ("cli", "jobs", "reports", "store", "shared"),
    "atlas": ("api", "services", "domain", "adapters", "core"),
}

_WORDS = (
    "account",
    "audit",
    "batch",
    "billing",
    "cache",
    "catalog",
    "channel",
    "checkout",
    "config",
    "consumer",
    "contract",
    "cursor",
    "digest",
    "dispatch",
    "document",
    "encoder",
    "event",
    "export",
    "feature",
    "filter",
    "gateway",
    "graph",
    "health",
    "index",
    "invoice",
    "journal",
    "ledger",
    "limits",
    "loader",
    "mapper",
    "metrics",
    "migration",
    "monitor",
    "notify",
    "order",
    "parser",
    "payment",
    "pipeline",
    "policy",
    "pricing",
    "profile",
    "queue",
    "quota",
    "registry",
    "render",
    "report",
    "retry",
    "router",
    "rules",
    "schema",
    "search",
    "session",
    "settings",
    "shipment",
    "signal",
    "snapshot",
    "storage",
    "stream",
    "tenant",
    "token",
    "tracker",
    "transform",
    "user",
    "validate",
    "vault",
    "webhook",
)
_STDLIB = (
    ("import os", None),
    ("import re", None),
    ("import json", None),
    ("import logging", None),
    ("import itertools", None),
    ("import functools", None),
    ("from pathlib import Path", "Path"),
    ("from collections import defaultdict", None),
    ("from enum import Enum", "Enum"),
    ("import time", None),
    ("import hashlib", None),
)
_OPTIONAL = ("numpy", "yaml", "ujson", "orjson", "requests", "attr")


@dataclass
class Module:
    """One planned module; ``imports`` are filled in by the wiring pass."""

    name: str
    is_package: bool
    top: str
    layer: int  # global layer: 0 = highest (beacon.cli) ... 9 = lowest (atlas.core)
    index: int  # creation order, breaks ties inside a layer (earlier may import later)
    exports: list[str] = field(default_factory=list)
    top_imports: list[str] = field(default_factory=list)
    local_imports: list[str] = field(default_factory=list)
    try_imports: list[str] = field(default_factory=list)
    type_imports: list[str] = field(default_factory=list)

    @property
    def package(self) -> str:
        """The package relative imports are resolved against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    def relpath(self) -> str:
        parts = self.name.split(".")
        return "/".join(parts) + ("/__init__.py" if self.is_package else ".py")


@dataclass
class GeneratedTree:
    """What was generated: where, how many modules, and the deliberate flaws."""

    root: Path
    source_root: Path
    packages: list[str]
    modules: int
    lines: int
    upward_imports: list[tuple[str, str]]
    cycles: list[list[str]]
    digest: str  # sha256 over every path and content: equal digests, equal trees


def _camel(word: str) -> str:
    return "".join(p.capitalize() for p in word.split("_"))


class _Planner:
    def __init__(self, rng: random.Random, total: int) -> None:
        self.rng = rng
        self.total = total
        self.modules: list[Module] = []
        self.by_name: dict[str, Module] = {}
        # package name -> (top, global layer, depth below the layer package)
        self.package_dirs: dict[str, tuple[str, int, int]] = {}

    def add(self, name: str, is_package: bool, top: str, layer: int) -> Module:
        mod = Module(name, is_package, top, layer, len(self.modules))
        leaf = name.rpartition(".")[2]
        base = _camel(leaf)
        mod.exports = [f"{base}Service", f"{base}Record", f"make_{leaf}"]
        self.modules.append(mod)
        self.by_name[name] = mod
        return mod

    def _fresh(self, parent: str) -> str:
        word = self.rng.choice(_WORDS)
        name, n = f"{parent}.{word}", 2
        while name in self.by_name:
            name, n = f"{parent}.{word}_{n}", n + 1
        return name

    def plan(self) -> None:
        layer_no = 0
        for top, layers in LAYERS.items():
            self.add(top, True, top, layer_no)
            for layer in layers:
                name = f"{top}.{layer}"
                self.add(name, True, top, layer_no)
                self.package_dirs[name] = (top, layer_no, 0)
                layer_no += 1
        if len(self.modules) > self.total:
            raise ValueError(f"at least {len(self.modules)} modules are needed")
        while len(self.modules) < self.total:
            parent = self.rng.choice(sorted(self.package_dirs))
            top, level, depth = self.package_dirs[parent]
            name = self._fresh(parent)
            # A sub-package costs one module (its __init__); keep room for content.
            if depth < 3 and self.rng.random() < 0.12 and len(self.modules) < self.total - 1:
                self.add(name, True, top, level)
                self.package_dirs[name] = (top, level, depth + 1)
            else:
                self.add(name, False, top, level)

    def _below(self, mod: Module) -> list[Module]:
        """Modules ``mod`` may import without breaking the layering (a DAG)."""
        return [
            m
            for m in self.modules
            if m is not mod
            and (m.layer > mod.layer or (m.layer == mod.layer and m.index > mod.index))
            and (m.top == mod.top or mod.top == "beacon")
            and not mod.name.startswith(m.name + ".")  # never a package that contains it
        ]

    def wire(self) -> tuple[list[tuple[str, str]], list[list[str]]]:
        rng = self.rng
        candidates_by_layer: dict[int, list[Module]] = {}
        for mod in self.modules:
            candidates_by_layer.setdefault(mod.layer, []).append(mod)
        for mod in self.modules:
            below = self._below(mod)
            if not below:
                continue
            # Prefer near layers, as real code does; __init__ files import less.
            near = [m for m in below if m.layer - mod.layer <= 2] or below
            count = rng.randint(0, 2) if mod.is_package else rng.randint(1, 6)
            for target in rng.sample(near, min(count, len(near))):
                where = rng.random()
                stmt = self._import(mod, target)
                if mod.is_package or where < 0.6:
                    mod.top_imports.append(stmt)
                elif where < 0.78:
                    mod.local_imports.append(stmt)
                elif where < 0.88:
                    mod.try_imports.append(stmt)
                else:
                    mod.type_imports.append(self._from_import(mod, target))
        upward: list[tuple[str, str]] = []
        plain = [m for m in self.modules if not m.is_package]
        lows = [m for m in plain if m.layer % 5 >= 3]
        for _ in range(max(1, self.total // 300)):
            if not lows:
                break
            low = rng.choice(lows)
            highs = [m for m in plain if m.top == low.top and m.layer < low.layer - 1]
            if not highs:
                continue
            high = rng.choice(highs)
            low.local_imports.append(self._import(low, high))  # hidden in a function
            upward.append((low.name, high.name))
        cycles: list[list[str]] = []
        for size in [2] * max(1, self.total // 500) + [3]:
            layer = rng.choice(sorted(candidates_by_layer))
            pool = [m for m in candidates_by_layer[layer] if not m.is_package]
            if len(pool) < size:
                continue
            ring = sorted(rng.sample(pool, size), key=lambda m: m.index)
            for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
                a.top_imports.append(self._from_import(a, b))
            cycles.append([m.name for m in ring])
        return upward, cycles

    def _relative(self, mod: Module, target: Module) -> tuple[str, str] | None:
        """``(dots + rest, leaf)`` for a relative import of ``target``, if natural."""
        parent, _, leaf = target.name.rpartition(".")
        here = mod.package
        if parent == here:
            return ".", leaf
        if "." in here and parent == here.rpartition(".")[0]:
            return "..", leaf
        return None

    def _import(self, mod: Module, target: Module) -> str:
        """Any import style that makes an edge to ``target`` (grimp's rules)."""
        roll = self.rng.random()
        rel = self._relative(mod, target)
        if rel is not None and roll < 0.5:
            dots, leaf = rel
            return f"from {dots} import {leaf}"
        if roll < 0.7:
            return f"import {target.name}"
        if roll < 0.85 and "." in target.name:
            parent, _, leaf = target.name.rpartition(".")
            return f"from {parent} import {leaf}"
        return self._from_import(mod, target)

    def _from_import(self, mod: Module, target: Module) -> str:
        names = ", ".join(sorted(self.rng.sample(target.exports, self.rng.randint(1, 2))))
        rel = self._relative(mod, target)
        if rel is not None and self.rng.random() < 0.5:
            dots, leaf = rel
            return f"from {dots}{leaf} import {names}"
        return f"from {target.name} import {names}"


def _imported_name(stmt: str) -> str:
    """A name an import statement binds, to use it in generated code."""
    tail = stmt.split(" import ", 1)[1] if stmt.startswith("from ") else stmt[len("import ") :]
    first = tail.split(",")[0].strip()
    return first.split(".")[0]


def _body(mod: Module, rng: random.Random) -> str:
    leaf = mod.name.rpartition(".")[2]
    service, record, factory = mod.exports
    kind = rng.choice(("logic", "helpers", "models", "glue", "adapters"))
    lines: list[str] = [
        f'"""{mod.name}: {leaf.replace("_", " ")} {kind}."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if mod.is_package:
        lines += sorted(set(mod.top_imports))
        lines += ["", f"__all__ = [{service!r}, {record!r}]", "", ""]
        lines += [
            f"class {service}:",
            f'    """Entry point of {mod.name}."""',
            "",
            "    def __init__(self) -> None:",
            "        self.ready = False",
            "",
            "",
        ]
        lines += [
            f"class {record}:",
            "    __slots__ = ('id',)",
            "",
            "    def __init__(self, id: int) -> None:",
            "        self.id = id",
            "",
            "",
        ]
        lines += [f"def {factory}() -> {service}:", f"    return {service}()"]
        return "\n".join(lines) + "\n"
    target = rng.randint(20, 80)
    std = sorted(rng.sample(_STDLIB, rng.randint(1, 4)))
    abc = rng.random() < 0.3
    proto = rng.random() < 0.25
    lines += ["import logging"] if ("import logging", None) not in std else []
    lines += [s for s, _ in std]
    typing_names = ["TYPE_CHECKING"] + (["Protocol"] if proto else [])
    if abc:
        lines.append("from abc import ABC, abstractmethod")
    lines.append("from dataclasses import dataclass")
    lines.append(f"from typing import {', '.join(typing_names)}")
    if mod.top_imports:
        lines.append("")
        lines += sorted(set(mod.top_imports))
    optional = rng.choice(_OPTIONAL) if rng.random() < 0.3 else None
    if mod.try_imports or optional:
        lines += ["", "try:"]
        lines += [f"    {s}" for s in mod.try_imports]
        if optional:
            lines.append(f"    import {optional}")
        lines += ["except ImportError:  # optional at runtime"]
        lines += [f"    {optional} = None" if optional else "    pass"]
    annotation = "object"
    if mod.type_imports:
        lines += ["", "if TYPE_CHECKING:"]
        lines += [f"    {s}" for s in mod.type_imports]
        annotation = _imported_name(mod.type_imports[0])
    lines += ["", "log = logging.getLogger(__name__)", "", ""]
    if abc:
        lines += [
            f"class {service}Base(ABC):",
            f'    """What every {leaf} service must do."""',
            "",
            "    @abstractmethod",
            f"    def handle(self, item: {annotation}) -> None: ...",
            "",
            "    @abstractmethod",
            "    def close(self) -> None: ...",
            "",
            "",
        ]
    if proto:
        lines += [
            f"class {service}Like(Protocol):",
            f"    def handle(self, item: {annotation}) -> None: ...",
            "",
            "",
        ]
    lines += [
        "@dataclass",
        f"class {record}:",
        "    id: int",
        '    name: str = ""',
        "    weight: float = 1.0",
        "",
        "",
    ]
    base = f"({service}Base)" if abc else ""
    lines += [
        f"class {service}{base}:",
        f'    """Handles {leaf} records."""',
        "",
        "    def __init__(self) -> None:",
        f"        self.items: list[{record}] = []",
        "",
        f"    def handle(self, item: {annotation}) -> None:",
        f'        log.debug("{leaf}: %r", item)',
        f"        self.items.append({record}(id=len(self.items)))",
        "",
        "    def close(self) -> None:",
        "        self.items.clear()",
        "",
        "",
    ]
    lines += [f"def {factory}(values: list[int]) -> int:"]
    for stmt in mod.local_imports:
        lines.append(f"    {stmt}  # imported here to keep start-up light")
    for stmt in mod.local_imports:
        lines.append(f"    _ = {_imported_name(stmt)}")
    lines += ["    total = 0", "    for v in values:", "        total += v", "    return total"]
    k = 0
    while len(lines) < target:
        k += 1
        lines += [
            "",
            "",
            f"def _{leaf}_helper_{k}(value: int, scale: int = {rng.randint(2, 9)}) -> int:",
            f'    """Helper {k} of {leaf}."""',
            "    if value < 0:",
            "        return 0",
            "    return value * scale",
        ]
    return "\n".join(lines) + "\n"


def generate(dest: Path, modules: int = 1500, seed: int = 5) -> GeneratedTree:
    """Write the codebase under ``dest`` (which must be empty or absent)."""
    rng = random.Random(seed)
    planner = _Planner(rng, modules)
    planner.plan()
    upward, cycles = planner.wire()
    source_root = dest / "src"
    digest = hashlib.sha256()
    line_count = 0
    for mod in planner.modules:
        path = source_root / mod.relpath()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _body(mod, rng)
        path.write_text(text, encoding="utf-8")
        digest.update(mod.relpath().encode() + b"\0" + text.encode() + b"\0")
        line_count += text.count("\n")
    (dest / "README.md").write_text(
        f"Generated by perf.codegen (seed {seed}, {modules} modules). Not real code.\n",
        encoding="utf-8",
    )
    return GeneratedTree(
        root=dest,
        source_root=source_root,
        packages=list(LAYERS),
        modules=len(planner.modules),
        lines=line_count,
        upward_imports=upward,
        cycles=cycles,
        digest=digest.hexdigest(),
    )


def edit_one_file(tree: GeneratedTree) -> Path:
    """Change one mid-layer module the way a developer would (a new function and
    import), keeping the module count: the "edit then re-run" case."""
    candidates = sorted(p for p in tree.source_root.rglob("*.py") if p.name != "__init__.py")
    path = candidates[len(candidates) // 2]
    with path.open("a", encoding="utf-8") as f:
        f.write(
            "\n\ndef _edited_by_perf() -> str:\n    import textwrap\n\n"
            "    return textwrap.dedent('  edited')\n"
        )
    return path
