"""Installing a plugin the way pip would, for tests: a module and a
``.dist-info`` with ``entry_points.txt`` in a folder put on ``PYTHONPATH``."""

from __future__ import annotations

from pathlib import Path


def install(site: Path, dist: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[corral]\n{module} = {module}\n")
