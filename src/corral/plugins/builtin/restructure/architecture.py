"""The architecture around a restructuring: the score and the cycles before,
as the plan predicts them, and after (the architecture analysis's own
functions, on the project at PATH; nothing is imported or run)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from corral.plugins.builtin.architecture.contracts import ArchitectureConfig, load_config
from corral.plugins.builtin.architecture.cycles import find_cycles
from corral.plugins.builtin.architecture.discover import analyse
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError
from corral.plugins.builtin.architecture.layers import check_architecture
from corral.plugins.builtin.architecture.metrics import compute_metrics
from corral.plugins.builtin.architecture.model import Edge, ImportGraph
from corral.plugins.builtin.architecture.score import compute_score
from corral.plugins.builtin.architecture.styles import detect_style
from corral.plugins.builtin.restructure.moves import Renames

__all__ = ["Analysis", "analysis", "predicted_cycles", "predicted_violations"]


class Analysis:
    """One look at the project: modules, internal imports, score, cycles."""

    def __init__(self, root: Path) -> None:
        found, graph = analyse(root)
        self.graph = graph
        self.modules: set[str] = set(graph.modules)
        packages = set(graph.packages or ())
        self.kinds = {m: m in packages for m in self.modules}  # module -> is a package
        self.edges = {(e.importer, e.imported) for e in graph.edges}
        metrics = compute_metrics(found, graph)
        cycles = find_cycles(graph, found)
        try:
            config = load_config(root, root)
        except ArchitectureConfigError:
            config = None  # (analyze reports it; the score falls back to the detected style)
        layers = check_architecture(config, graph, metrics["modules"], graph.external)
        # the contracts checked, declared or detected: a plan's result is
        # checked against the same ones (see predicted_violations)
        if config is None:
            detected = detect_style(graph, metrics["modules"])
            config = (
                None
                if detected is None
                else ArchitectureConfig("detected", "", list(detected["contracts"]))
            )
        self.contracts = config
        # each violation of a layer contract as the import that crosses the
        # line: (importer, imported, importer's layer, imported's layer);
        # of an indirect one, the first import of its chain into the upper layer
        self.layer_violations: list[tuple[str, str, str, str]] = []
        for contract in layers["contracts"]:
            if contract["kind"] != "layers":
                continue
            for v in contract["violations"]:
                upper = v["imported_layer"]
                chain = v["chain"]
                for a, b in itertools.pairwise(chain):
                    if b == upper or b.startswith(upper + "."):
                        self.layer_violations.append((a, b, v["importer_layer"], upper))
                        break
        # each package cycle's cut, as the module imports it is made of
        self.package_cuts = [
            sorted({(via["importer"], via["imported"]) for cut in c["cut"] for via in cut["via"]})
            for c in cycles["packages"]
        ]
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
        made.graph = ImportGraph()
        made.modules = set(data["modules"])
        made.kinds = dict(data["kinds"])
        made.edges = {(a, b) for a, b in data["edges"]}
        made.summary = dict(data["summary"])
        made.contracts = None
        made.layer_violations = []
        made.package_cuts = []
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
        # which modules are packages, as the analysis knows them (not guessed
        # from the names: a package with no module inside is still one)
        "packages": sorted(
            {new(m) for m, is_package in before.kinds.items() if is_package} | set(created)
        ),
        "paths": {},
    }
    cycles = find_cycles(graph)
    old_modules = [{new(m) for m in c} for c in before.summary["module_cycles"]]
    old_packages = [{new(m) for m in c} for c in before.summary["package_cycles"]]
    # A package the plan creates stands for the packages its modules came from.
    origins: dict[str, set[str]] = {}
    for old_name, new_name in renames.modules.items():
        parent = new_name.rpartition(".")[0]
        if parent in created:
            origins.setdefault(parent, set()).add(new(old_name.rpartition(".")[0]))

    def inside(cycle: list[str], old: list[set[str]]) -> bool:
        # Part of a cycle that is there today is not new: a move that
        # breaks one big tangle into smaller ones creates no cycle.
        return any(all(m in c or origins.get(m, set()) & c for m in cycle) for c in old)

    modules = [c["members"] for c in cycles["modules"]]
    packages = [c["members"] for c in cycles["packages"]]
    return {
        "module_cycles": modules,
        "package_cycles": packages,
        "new_module_cycles": [c for c in modules if not inside(c, old_modules)],
        "new_package_cycles": [c for c in packages if not inside(c, old_packages)],
    }


def predicted_violations(before: Analysis, renames: Renames, created: list[str]) -> int:
    """How many violations of the layer contracts the graph the plan predicts
    (today's, names renamed) has, against the contracts checked today."""
    if before.contracts is None:
        return 0

    def new(name: str) -> str:
        return renames.modules.get(name, name)

    graph = ImportGraph(
        modules=sorted({new(m) for m in before.modules} | set(created)),
        edges=[Edge(new(e.importer), new(e.imported), e.lines) for e in before.graph.edges],
    )
    modules = {
        new(m): {"path": None, "is_package": is_package} for m, is_package in before.kinds.items()
    }
    modules.update({m: {"path": None, "is_package": True} for m in created})
    external = [Edge(new(e.importer), e.imported, e.lines) for e in before.graph.external]
    layers = check_architecture(before.contracts, graph, modules, external)
    return int(layers["violations"])
