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


@functools.cache
def _distributions() -> dict[str, list[str]]:
    try:
        return dict(metadata.packages_distributions())
    except Exception:  # a broken installed distribution must not break a report
        return {}


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
    """The installed distribution providing the top-level module, if any."""
    names = _distributions().get(module)
    return sorted(names)[0] if names else None


def is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module == "__future__"


def classify(external: list[dict[str, Any]], internal: set[str]) -> list[dict[str, Any]]:
    """``[{"name", "distribution", "stdlib", "importers"}]`` sorted by name.

    ``external`` holds ``{"importer", "imported"}`` pairs with top-level
    ``imported`` names; names in ``internal`` (the project's own top-level
    packages, which grimp may list as external when analysed apart) are
    dropped. ``importers`` counts distinct importing modules.
    """
    importers: dict[str, set[str]] = defaultdict(set)
    for edge in external:
        name = edge["imported"]
        if name not in internal:
            importers[name].add(edge["importer"])
    return [
        {
            "name": name,
            "distribution": None if is_stdlib(name) else distribution_of(name),
            "stdlib": is_stdlib(name),
            "importers": len(importers[name]),
        }
        for name in sorted(importers)
    ]
