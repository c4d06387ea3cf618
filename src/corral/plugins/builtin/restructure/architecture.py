"""The architecture around a restructuring: the score and the cycles before,
as the plan predicts them, and after (the architecture analysis's own
functions, on the project at PATH; nothing is imported or run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.errors import ArchitectureConfigError
from corral.plugins.builtin.architecture.cycles import find_cycles
from corral.plugins.builtin.architecture.discover import analyse
from corral.plugins.builtin.architecture.layers import check_architecture, load_config
from corral.plugins.builtin.architecture.metrics import compute_metrics
from corral.plugins.builtin.architecture.score import compute_score
from corral.plugins.builtin.restructure.moves import Renames

__all__ = ["Analysis", "analysis", "predicted_cycles"]


class Analysis:
    """One look at the project: modules, internal imports, score, cycles."""

    def __init__(self, root: Path) -> None:
        found, graph = analyse(root)
        self.graph = graph
        self.modules: set[str] = set(graph["modules"])
        packages = set(graph.get("packages", []))
        self.kinds = {m: m in packages for m in self.modules}  # module -> is a package
        self.edges = {(e["importer"], e["imported"]) for e in graph["edges"]}
        metrics = compute_metrics(found, graph)
        cycles = find_cycles(graph, found)
        try:
            config = load_config(root, root)
        except ArchitectureConfigError:
            config = None  # (analyze reports it; the score falls back to the detected style)
        layers = check_architecture(config, graph, metrics["modules"], graph.get("external", []))
        self.summary = {
            "score": compute_score(metrics, cycles, layers)["value"],
            "module_cycles": [c["members"] for c in cycles["modules"]],
            "package_cycles": [c["members"] for c in cycles["packages"]],
            "violations": layers.get("violations", 0),
        }

    def to_data(self) -> dict[str, Any]:
        """What a plan keeps of the analysis (not the graph's details)."""
        return {
            "modules": sorted(self.modules),
            "kinds": self.kinds,
            "edges": sorted(self.edges),
            "summary": self.summary,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Analysis:
        made = cls.__new__(cls)
        made.graph = {}
        made.modules = set(data["modules"])
        made.kinds = dict(data["kinds"])
        made.edges = {(a, b) for a, b in data["edges"]}
        made.summary = dict(data["summary"])
        return made


def analysis(root: Path) -> Analysis:
    return Analysis(root)


def predicted_cycles(before: Analysis, renames: Renames, created: list[str]) -> dict[str, Any]:
    """The cycles of the graph the plan predicts (today's, names renamed),
    and which of them are new."""

    def new(name: str) -> str:
        return renames.modules.get(name, name)

    graph = {
        "modules": sorted({new(m) for m in before.modules} | set(created)),
        "edges": [{"importer": new(a), "imported": new(b)} for a, b in sorted(before.edges)],
    }
    cycles = find_cycles(graph)
    old_modules = {tuple(sorted(new(m) for m in c)) for c in before.summary["module_cycles"]}
    old_packages = {tuple(sorted(new(m) for m in c)) for c in before.summary["package_cycles"]}
    modules = [c["members"] for c in cycles["modules"]]
    packages = [c["members"] for c in cycles["packages"]]
    return {
        "module_cycles": modules,
        "package_cycles": packages,
        "new_module_cycles": [c for c in modules if tuple(sorted(c)) not in old_modules],
        "new_package_cycles": [c for c in packages if tuple(sorted(c)) not in old_packages],
    }
