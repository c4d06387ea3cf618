"""The ``architecture.*`` handlers: architecture analysis of a Python codebase.

A pluggy plugin like any other. :func:`analysis_workflow` builds the
``architecture.analyze`` workflow: for each project found under the path
(a repository with subprojects has several; they run in parallel)::

    scan -> facts ------------> section (discovery, metrics, cycles, layers, score)
         -> graph (parallel) ->            all sections -> report

``scan`` walks, reads and hashes the files; every later step is cached by
content (the step cache keys on params and upstream outputs), so
re-analysing an unchanged tree only re-walks it, and an edit recomputes only
the steps whose inputs it changed. ``facts`` (lines, classes; :mod:`.facts`)
and ``graph`` (imports, by grimp's parser in an isolated process; :mod:`.graph`)
read the files at the same time, on both cores. Nothing analysed is ever
imported or executed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from corral.core.errors import NonRetryable
from corral.plugins import Handler, StepContext
from corral.plugins.builtin.architecture.contracts import ArchitectureConfig
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError
from corral.plugins.builtin.architecture.model import Discovery, ImportGraph, Settings
from corral.plugins.builtin.architecture.settings import DEFAULT_MAX_FILE_BYTES

__all__ = [
    "Facts",
    "Graph",
    "Report",
    "Scan",
    "Scanned",
    "Section",
    "analysis_workflow",
    "project_settings",
    "summary_text",
]

_Data = dict[str, Any]

# The analysis itself (discover, facts, graph, layers, report ...) is
# imported by the steps that run it, not here: registering this plugin (every
# engine does) costs a few class definitions, not the analyser's ~15 ms.


def summary_text(report: dict[str, Any]) -> str:
    """The report as a short text for a terminal (:mod:`.report`)."""
    from corral.plugins.builtin.architecture.report import summary_text as text

    return text(report)


def _code_digest() -> str:
    """A digest of this package's own source: part of every handler version,
    so results cached by an older analysis code are never served."""
    import hashlib

    h = hashlib.blake2b(digest_size=4)
    for file in sorted(Path(__file__).parent.glob("*.py")):
        h.update(file.read_bytes())
    return h.hexdigest()


def _grimp_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("grimp")
    except metadata.PackageNotFoundError:
        return "unknown"


#: ``<schema>+<code digest>.<grimp>.<python>``: the step cache keys on handler
#: versions, and each of these changes what a step computes (grimp's edge
#: rules, what ``ast`` accepts and ``sys.stdlib_module_names``).
VERSION = f"2+{_code_digest()}.g{_grimp_version()}.py{sys.version_info[0]}{sys.version_info[1]}"


class _Options(msgspec.Struct, forbid_unknown_fields=True):
    exclude: list[str] = msgspec.field(default_factory=list)
    exclude_tests: bool = False
    exclude_type_checking: bool = False


def project_settings(
    root: str | os.PathLike[str], project: dict[str, Any], options: dict[str, Any]
) -> tuple[Settings, ArchitectureConfig | None]:
    """(effective options, layer contracts) of one project.

    The project's ``[tool.corral.architecture]`` options add to the given
    ones (excludes are merged; ``exclude_*`` flags are or-ed). Raises
    :class:`ArchitectureConfigError` for a malformed configuration.
    """
    from corral.plugins.builtin.architecture.contracts import load_config
    from corral.plugins.builtin.architecture.projects import config_home, read_options

    base = Path(root).resolve()
    directory = base / project["path"]
    if project["path"] == ".":  # the analysed folder: its project's configuration
        directory = config_home(directory)
    own = read_options(directory, base)
    effective = Settings(
        exclude=sorted({*options.get("exclude", []), *own.get("exclude", [])}),
        exclude_tests=bool(options.get("exclude_tests") or own.get("exclude_tests")),
        exclude_type_checking=bool(
            options.get("exclude_type_checking") or own.get("exclude_type_checking")
        ),
        fail_on=own.get("fail_on", []),
    )
    return effective, load_config(directory, base)


class Scanned(msgspec.Struct):
    """The ``scan`` step's output: the project (as found by
    :func:`.projects.find_projects`), its settings, its layer contracts
    (or ``None``) and the scan."""

    project: dict[str, Any]
    options: Settings
    config: ArchitectureConfig | None
    scan: Discovery


class Scan(Handler):
    """Walk one project: its packages and modules, hashed; its configuration."""

    internal = True

    name = "architecture.scan"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str
        project: _Data
        options: _Options = msgspec.field(default_factory=_Options)
        max_file_bytes: Annotated[int, Meta(gt=0)] = DEFAULT_MAX_FILE_BYTES
        # start the graph step's isolated process now (see analysis_workflow)
        prestart: bool = False

    def run(self, ctx: StepContext, params: Params) -> Scanned:  # type: ignore[override]
        from corral.plugins.builtin.architecture.discover import scan
        from corral.plugins.builtin.architecture.isolation import prestart

        if params.prestart:  # its interpreter start-up overlaps the walk
            prestart("imports")
        root, project = params.root, params.project
        try:
            options, config = project_settings(root, project, msgspec.to_builtins(params.options))
            scanned = scan(
                Path(root) / project["path"],
                root=root,
                exclude=options.exclude,
                exclude_tests=options.exclude_tests,
                max_file_bytes=params.max_file_bytes,
                skip=project.get("subprojects", []),
                on_file=lambda n: ctx.progress(n, None, "files found"),
            )
        except (OSError, ArchitectureConfigError) as exc:
            raise NonRetryable(str(exc)) from exc
        modules = sum(len(p.modules) for p in scanned.packages)
        ctx.progress(modules, modules, "files found")
        return Scanned(project, options, config, scanned)


class Facts(Handler):
    """Lines of code and (abstract) classes of every module (:mod:`.facts`)."""

    internal = True

    name = "architecture.facts"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        scan: Discovery
        memo: str | None = None  # file of per-file facts from earlier runs (memo.py)

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.architecture import memo
        from corral.plugins.builtin.architecture.discover import add_facts
        from corral.plugins.builtin.architecture.isolation import ChildFailed

        known = memo.load(params.memo, VERSION) if params.memo else None
        try:
            facts = add_facts(
                params.scan, known, on_file=lambda n, t: ctx.progress(n, t, "files read")
            )
        except ChildFailed as exc:  # the isolated parser could not run at all
            raise NonRetryable(f"reading the files' facts failed: {exc}") from exc
        if params.memo and known is not None:
            memo.save(params.memo, VERSION, known)
        ctx.progress(len(facts), len(facts), "files read")
        return facts


class Graph(Handler):
    """The import graph of the scanned packages (grimp, isolated process)."""

    internal = True

    name = "architecture.graph"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        scan: Discovery
        exclude_type_checking: bool = False

    def run(self, ctx: StepContext, params: Params) -> ImportGraph:  # type: ignore[override]
        from corral.plugins.builtin.architecture.graph import GraphBuildError, build_import_graph

        modules = sum(len(p.modules) for p in params.scan.packages)
        ctx.progress(0, modules, "modules: building the import graph")
        try:
            graph = build_import_graph(
                params.scan,
                exclude_type_checking=params.exclude_type_checking,
                on_progress=lambda n, t: ctx.progress(n, t, "modules: building the import graph"),
            )
        except GraphBuildError as exc:
            raise NonRetryable(str(exc)) from exc
        ctx.progress(modules, modules, f"modules, {len(graph.edges)} imports")
        return graph


class Section(Handler):
    """One project's section of the report: its discovery (the scan with the
    facts, less what the graph could not read), coupling metrics, import
    cycles, layer contracts, score and recommendations.

    One step, not five: each of these takes a few tens of milliseconds on
    1,500 modules, less than handing the graph and the discovery from step
    to step (every hand-over encodes them for the step cache's key and
    value), and they share one thread's worth of CPU anyway.
    """

    internal = True

    name = "architecture.section"
    version = VERSION
    kind = "blocking"

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        project: _Data
        scan: Discovery
        facts: dict[str, list[int]]
        graph: ImportGraph
        config: ArchitectureConfig | None = None
        # which distributions are installed: external imports are named by them
        environment: str = ""

    def run(self, ctx: StepContext, params: Params) -> _Data:  # type: ignore[override]
        from corral.plugins.builtin.architecture.cycles import find_cycles
        from corral.plugins.builtin.architecture.discover import merge
        from corral.plugins.builtin.architecture.isolation import discard_spare
        from corral.plugins.builtin.architecture.layers import check_architecture
        from corral.plugins.builtin.architecture.metrics import compute_metrics
        from corral.plugins.builtin.architecture.report import build_section

        discard_spare()  # the graph is built (or was cached): no use for one now
        graph = params.graph
        discovery = merge(params.scan, params.facts, graph)
        packages = set(graph.packages or ())
        modules = {
            name: {"path": path, "is_package": name in packages}
            for name, path in graph.paths.items()
        }
        return build_section(
            params.project,
            discovery,
            graph,
            compute_metrics(discovery, graph),
            find_cycles(graph, discovery),
            check_architecture(params.config, graph, modules, graph.external),
        )


class Report(Handler):
    """The architecture report: every project's section, summed up."""

    internal = True

    name = "architecture.report"
    version = VERSION  # light work: runs in the event loop, no worker process hop

    class Params(msgspec.Struct, forbid_unknown_fields=True):
        root: str
        options: _Data
        sections: list[_Data]

    async def run(self, ctx: StepContext, params: Params) -> _Data:
        from corral.core.version import __version__
        from corral.plugins.builtin.architecture.report import combine

        return combine(params.root, params.options, params.sections, __version__)


def builds_graph(root: Path, project: dict[str, Any], *, cache: bool = True) -> bool:
    """Whether an analysis of ``project`` most likely builds its import graph
    (a first one: no memo of an earlier run), so the graph's isolated process
    is worth starting ahead (:func:`.isolation.prestart`): its interpreter
    start-up then overlaps other work. After a first analysis the graph most
    likely comes from the step cache, and a spare would only hold memory."""
    from corral.plugins.builtin.architecture import memo

    return not cache or not os.path.exists(memo.memo_path(root, project["path"]))


def add_project_steps(
    wf: Any,
    root: Path,
    project: dict[str, Any],
    i: int,
    options: dict[str, Any],
    *,
    cache: bool = True,
) -> Any:
    """Add one project's chain of analysis steps (``scan_i`` → ``facts_i`` ‖
    ``graph_i`` → ``section_i``) to the workflow ``wf``; returns the section
    step, whose output is the project's section of the report. Other
    workflows (``corral vibe``) build on the same steps."""
    from corral.plugins.builtin.architecture import memo
    from corral.plugins.builtin.architecture.externals import environment_digest

    memo_file = memo.memo_path(root, project["path"]) if cache else None
    scan_ = wf.step(
        f"scan_{i}",
        "architecture.scan",
        root=str(root),
        project=project,
        options=options,
        prestart=builds_graph(root, project, cache=cache),
    )
    cached: dict[str, Any] = {"cache": cache}
    # facts and graph both read every file: they run side by side.
    facts = wf.step(
        f"facts_{i}",
        "architecture.facts",
        needs=[scan_],
        scan=scan_.output.scan,
        memo=memo_file,
        **cached,
    )
    graph = wf.step(
        f"graph_{i}",
        "architecture.graph",
        needs=[scan_],
        scan=scan_.output.scan,
        exclude_type_checking=scan_.output.options.exclude_type_checking,
        **cached,
    )
    return wf.step(
        f"section_{i}",
        "architecture.section",
        needs=[scan_, facts, graph],
        project=project,
        scan=scan_.output.scan,
        facts=facts.output,
        graph=graph.output,
        config=scan_.output.config,
        environment=environment_digest(),
        **cached,
    )


def analysis_workflow(
    path: str | os.PathLike[str],
    *,
    exclude: list[str] | None = None,
    exclude_tests: bool = False,
    exclude_type_checking: bool = False,
    cache: bool = True,
    projects: list[dict[str, Any]] | None = None,
) -> Any:
    """The ``architecture.analyze`` workflow (a ``corral.Workflow``); its
    result's ``"report"`` entry is the report dict.

    Projects are found now (a directory walk, nothing read but project
    files) unless given; each gets its own chain of steps, so they run in
    parallel. Raises :class:`~corral.core.errors.UsageError` when ``path`` is not a
    directory or holds no Python package.
    """
    from corral.core.errors import UsageError
    from corral.plugins.builtin.architecture.projects import find_projects
    from corral.workflow.builder import Workflow  # (the builder alone: not corral's __init__)

    root = Path(path)
    if not root.exists():
        raise UsageError(f"{path}: no such directory")
    if not root.is_dir():
        raise UsageError(f"{path}: not a directory (give the folder that holds the code)")
    root = root.resolve()
    options: dict[str, Any] = {
        "exclude": list(exclude or []),
        "exclude_tests": exclude_tests,
        "exclude_type_checking": exclude_type_checking,
    }
    if projects is None:
        projects = find_projects(root, exclude=options["exclude"], exclude_tests=exclude_tests)
    if not projects:
        raise UsageError(
            f"{path}: no Python package found (a package is a folder with an __init__.py)"
        )
    wf = Workflow("architecture.analyze")
    sections = [
        add_project_steps(wf, root, project, i, options, cache=cache)
        for i, project in enumerate(projects)
    ]
    wf.step(
        "report",
        "architecture.report",
        needs=sections,
        root=str(root),
        options=options,
        sections=[s.output for s in sections],
    )
    return wf
