"""The ``architecture.*`` handlers: architecture analysis of a Python codebase.

A pluggy plugin like any other. The steps chain through their outputs::

    discover -> graph -> metrics, cycles -> report

Nothing analysed is ever imported or executed: discovery parses with
:mod:`ast`, the import graph is built by grimp in an isolated subprocess.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from corral.errors import NonRetryable
from corral.plugins import Handler, StepContext, hookimpl
from corral.plugins.builtin.architecture.cycles import find_cycles
from corral.plugins.builtin.architecture.discover import DEFAULT_MAX_FILE_BYTES, discover
from corral.plugins.builtin.architecture.graph import GraphBuildError, build_import_graph
from corral.plugins.builtin.architecture.metrics import compute_metrics
from corral.plugins.builtin.architecture.report import build_report, summary_text

__all__ = [
    "Cycles",
    "Discover",
    "Graph",
    "Metrics",
    "Report",
    "analysis_workflow",
    "summary_text",
]

_Data = dict[str, Any]


class Discover(Handler):
    """Find the Python packages under a path and the files not analysed."""

    name = "architecture.discover"
    version = "1"
    kind = "cpu"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        path: str
        exclude: list[str] = msgspec.field(default_factory=list)
        exclude_tests: bool = False
        max_file_bytes: Annotated[int, Meta(gt=0)] = DEFAULT_MAX_FILE_BYTES

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        try:
            return discover(
                params.path,
                exclude=params.exclude,
                exclude_tests=params.exclude_tests,
                max_file_bytes=params.max_file_bytes,
            )
        except OSError as exc:
            raise NonRetryable(str(exc)) from exc


class Graph(Handler):
    """Build the import graph of the discovered packages (grimp, isolated process)."""

    name = "architecture.graph"
    version = "1"
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        discovery: _Data
        exclude_type_checking: bool = False

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        try:
            return build_import_graph(
                params.discovery, exclude_type_checking=params.exclude_type_checking
            )
        except GraphBuildError as exc:
            raise NonRetryable(str(exc)) from exc


class Metrics(Handler):
    """Ca, Ce, instability, abstractness, distance and LOC per module and package."""

    name = "architecture.metrics"
    version = "1"
    kind = "cpu"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        discovery: _Data
        graph: _Data

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        return compute_metrics(params.discovery, params.graph)


class Cycles(Handler):
    """Import cycles (SCCs of size > 1) between modules and between packages."""

    name = "architecture.cycles"
    version = "1"
    kind = "cpu"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        graph: _Data
        discovery: _Data | None = None

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        return find_cycles(params.graph, params.discovery)


class Report(Handler):
    """Assemble the architecture report (a JSON-ready dict)."""

    name = "architecture.report"
    version = "1"
    kind = "cpu"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        discovery: _Data
        graph: _Data
        metrics: _Data
        cycles: _Data

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        return build_report(params.discovery, params.graph, params.metrics, params.cycles)


def analysis_workflow(
    path: str,
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    exclude_type_checking: bool = False,
) -> Any:
    """The ``architecture.analyze`` workflow (a ``corral.Workflow``); its
    result's ``"report"`` entry is the report dict."""
    import corral  # lazy: corral imports the built-in plugins

    wf = corral.Workflow("architecture.analyze")
    disc = wf.step(
        "discover",
        "architecture.discover",
        path=path,
        exclude=list(exclude or []),
        exclude_tests=exclude_tests,
    )
    graph = wf.step(
        "graph",
        "architecture.graph",
        needs=[disc],
        discovery=disc.output,
        exclude_type_checking=exclude_type_checking,
    )
    metrics = wf.step(
        "metrics", "architecture.metrics", needs=[graph], discovery=disc.output, graph=graph.output
    )
    cycles = wf.step(
        "cycles", "architecture.cycles", needs=[graph], graph=graph.output, discovery=disc.output
    )
    wf.step(
        "report",
        "architecture.report",
        needs=[metrics, cycles],
        discovery=disc.output,
        graph=graph.output,
        metrics=metrics.output,
        cycles=cycles.output,
    )
    return wf


@hookimpl
def corral_handlers() -> list[type[Handler]]:
    return [Discover, Graph, Metrics, Cycles, Report]
