"""External imports, named by distribution.

The import graph names external imports by top-level module (``yaml``);
what a reader acts on is the distribution that provides it (``PyYAML``) or
the fact that it is the standard library. The mapping comes from the
installed distributions' metadata (``importlib.metadata``) of the running
interpreter, so it is exact for the environment the project is analysed in
and ``None`` for modules no installed distribution provides.
"""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from importlib import metadata
from typing import Any

from corral.plugins.builtin.architecture.model import Edge


@functools.cache
def _declared() -> tuple[dict[str, list[Any]], list[Any]]:
    """(top-level name -> distributions that declare it in ``top_level.txt``,
    the distributions without one). Reading ``top_level.txt`` costs ~2 ms for
    150 distributions; :func:`importlib.metadata.packages_distributions`,
    which also parses every other distribution's ``RECORD`` and metadata,
    ~0.1 s, paid on every cold analysis."""
    declared: dict[str, list[Any]] = defaultdict(list)
    rest: list[Any] = []
    try:
        for dist in metadata.distributions():
            names = (dist.read_text("top_level.txt") or "").split()
            if not names:
                rest.append(dist)
            for name in names:
                declared[name].append(dist)
    except Exception:  # a broken installed distribution must not break a report
        return {}, []
    return dict(declared), rest


@functools.cache
def _inferred() -> dict[str, list[Any]]:
    """Top-level names of the distributions without ``top_level.txt``, from
    their ``RECORD`` (as :func:`importlib.metadata.packages_distributions`
    infers them); read only when a name is not declared by any. The RECORD
    text is split here: ``Distribution.files`` makes a path object of every
    line, 50x slower on a typical environment."""
    import csv
    import inspect

    inferred: dict[str, list[Any]] = defaultdict(list)
    for dist in _declared()[1]:
        try:
            record = dist.read_text("RECORD")
            if record is None:
                paths = [str(f) for f in dist.files or []]
            else:
                paths = [row[0] for row in csv.reader(record.splitlines()) if row]
        except Exception:
            continue
        names = set()
        for path in paths:
            head, sep, _ = path.partition("/")
            names.add(head if sep else inspect.getmodulename(path))
        for name in names:
            if name:
                inferred[name].append(dist)
    return dict(inferred)


def _dist_name(dist: Any) -> str:
    try:
        return str(dist.metadata["Name"])
    except Exception:
        return "unknown"


def environment_digest() -> str:
    """A digest of the installed distributions: part of the section step's
    cache key, so installing, upgrading or removing a package is seen.

    Made from the names of the ``*.dist-info``/``*.egg-info`` entries on
    ``sys.path`` (a name carries the version) and their modification times,
    not from their metadata: reading every distribution's metadata costs
    ~0.1 s, a listing ~1 ms, and the step cache is consulted on every run.
    """
    import hashlib
    import os

    h = hashlib.blake2b(digest_size=8)
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = sorted(
                    (e.name, e.stat().st_mtime_ns)
                    for e in it
                    if e.name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth"))
                )
        except OSError:
            continue
        h.update(repr((entry, names)).encode())
    return h.hexdigest()


def distribution_of(module: str) -> str | None:
    """The installed distribution providing the top-level module, if any (the
    first by name, as :func:`importlib.metadata.packages_distributions` would
    list them)."""
    dists = _declared()[0].get(module) or _inferred().get(module)
    return sorted(_dist_name(d) for d in dists)[0] if dists else None


def is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module == "__future__"


def classify(external: list[Edge], internal: set[str]) -> list[dict[str, Any]]:
    """``[{"name", "distribution", "stdlib", "importers"}]`` sorted by name.

    ``external`` holds ``{"importer", "imported"}`` pairs with top-level
    ``imported`` names; names in ``internal`` (the project's own top-level
    packages, which grimp may list as external when analysed apart) are
    dropped. ``importers`` counts distinct importing modules.
    """
    importers: dict[str, set[str]] = defaultdict(set)
    for edge in external:
        name = edge.imported
        if name not in internal:
            importers[name].add(edge.importer)
    return [
        {
            "name": name,
            "distribution": None if is_stdlib(name) else distribution_of(name),
            "stdlib": is_stdlib(name),
            "importers": len(importers[name]),
        }
        for name in sorted(importers)
    ]
