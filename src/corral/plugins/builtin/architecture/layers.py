"""Architecture contracts (layers, independence, forbidden) and style detection.

Two halves, kept apart on purpose:

- :func:`load_config` is the only function here that touches the file system.
  It reads the declared architecture, either corral's own
  ``[tool.corral.architecture]`` table in ``pyproject.toml`` or an
  import-linter configuration, validates it and normalises it into plain JSON
  data, because the result travels between workflow steps as JSON.
- :func:`check_architecture` is pure: given that configuration (or ``None``),
  the module import graph and the external imports, it returns the ``LAYERS``
  object of the architecture report. Without a configuration it first asks
  :func:`detect_style` for the contracts implied by the package names (or by
  the direction of the imports) and checks those the same way, so declared and
  detected architectures are reported identically.

Semantics follow import-linter's where it has them:

- A module belongs to a member ``x.y`` when its name is ``x.y`` or starts with
  ``x.y.``; when several members of one contract match, the longest wins.
- *layers*: a module in a lower layer may not import a higher layer, directly
  or through a chain of imports. Siblings written ``a | b`` share a layer and
  may not import each other either; siblings written ``a : b`` may.
  ``containers`` repeat the layers under each container; each container is
  checked on its own (``foo.low`` may import ``bar.high``).
- *independence*: no chain between any two members, either way.
- *forbidden*: no chain from a source member to a forbidden member
  (direct edges only with ``allow_indirect_imports``); pairs where one member
  contains the other are skipped. A forbidden name that is an external
  top-level package is matched against the external imports, and chains that
  reach it through the project's own modules count too.
- ``ignore_imports`` (``importer -> imported``, ``*`` standing for one name
  segment and ``**`` for one or more) removes edges before checking, for that
  contract only.

Indirect chains may only pass through modules that belong to *no* member of
the contract (in that container): a chain that enters another member is
reported where it enters it instead. So every broken contract is still
reported, each violation points at the import to change, and the search is
one breadth-first search per target member, linear in the graph size, instead
of one per pair of modules.

What is counted (``violation_count``, exact, never capped):

- every distinct direct import edge ``importer -> imported`` that breaks the
  contract (after ``ignore_imports``), plus
- when indirect imports are checked, one indirect violation per
  (importer module, target member) that has a chain but no direct edge into
  that member, with the shortest chain (ties broken by name) as its example.

Only the listed ``violations`` are capped (``max_violations`` per contract,
direct ones first, then by name); ``truncated`` says when some were left out.
Each contract also carries a ``detail`` sentence (what was checked, declared
names no module matches, or that an import-linter contract type is not
checked), and ``modules`` lists the members actually checked (wildcards
resolved): the independent modules, or a forbidden contract's sources.

Declared names that match no module (a name matches when it is a module or a
prefix of one; an expression when it matches a module), as import-linter,
which refuses to check such contracts:

- *required* names: a layers contract's containers and its non-optional
  layers (in each container that matches), an independence contract's
  modules, a forbidden contract's sources. Forbidden modules are not required
  (an external package nobody imports is not in the graph). A missing
  required name breaks the contract (``kept`` false) even without violations;
  the rest of the contract is still checked.
- a contract with *no* matching member at all (no layer module in any
  matching container, no independent module, no source) is not checked:
  ``kept`` false, no violations, and the detail says ``no module matches:``
  followed by every declared name that matches nothing (optional layers
  included).

``kept`` is ``True``/``False`` for checked contracts and ``None`` for
contract types corral does not check (``protected``, ``acyclic_siblings``,
custom ones); those count as neither kept nor broken, and add no violations.
The top-level ``problems`` lists, one sentence each and in contract order, the
contracts with a required name matching nothing (``"<name>: no module
matches: <names>; the other members were checked"``) or matching nothing at
all (``"...; nothing was checked"``).

``checked_edges`` counts the distinct import edges (over all contracts, after
each contract's ``ignore_imports``) that a contract checks directly:

- module edges whose two ends fall in different members of one contract
  scope, whether they break the contract or not;
- edges into an external package whose importer is in a member that may not
  import the package's member: in practice a forbidden contract's source
  importing an external top-level name listed in ``forbidden``. Allowed
  external imports are not counted, so each of these edges is violating.

``conformance`` is one minus the share of those edges that are direct
violations (internal or external), rounded to 4 places, ``None`` when no edge
is checked. Indirect violations are counted in ``violations`` but not in
``conformance``, since no single checked edge carries them.

Detected styles and the layering each one implies (top first; ``:`` joins
siblings of one layer, which may import each other):

- hexagonal (``domain``/``core`` + ``ports`` + ``adapters``):
  adapters > application/services/use_cases > ports > domain : core
- clean (``entities`` + ``use_cases``/``usecases``):
  frameworks/drivers/infrastructure > interface_adapters/adapters/gateways/
  controllers/presenters > use_cases > entities
- ddd (``domain`` + ``application`` + ``infrastructure``):
  interfaces/presentation/api/ui/web/cli : infrastructure > application > domain
  (infrastructure implements domain and application ports, so it sits above
  both; it shares the top layer with the interfaces, which wire it in)
- mvc (``models`` + ``views`` + ``controllers``): controllers > views > models;
  Django-style (``models`` + ``views`` + one of ``urls``, ``admin``, ``apps``,
  ``migrations`` in the package itself):
  urls : admin > views > forms : serializers > models; or a Django project,
  whose apps (sub-packages with ``models`` + ``views`` and one of ``urls``,
  ``admin``, ``apps``, ``migrations``) become the containers of that layering,
  every layer optional. Templates are not Python modules, so they are not seen.
- layered (at least two of the tiers presentation/api/ui/web/cli/gui/rest >
  services/service/application/business/logic/domain > data/repository/
  repositories/dal/persistence/db/database/storage/models).
- layered, inferred: when no names match but the sibling sub-packages of a
  package form a DAG at least three levels deep, each level (longest path to a
  sink) is a layer, its siblings joined with ``:``. By construction no direct
  edge breaks it, but chains
  through the package's own ``__init__`` (or other non-member modules) can.

Candidates are each top-level package (or its only child when the top level
is a wrapper around a single sub-package) and, when there are several
top-level packages, the set of top-level packages itself. Names are compared
lowercased, leading underscores ignored.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from corral.core.files import read_capped
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError

__all__ = [
    "DEFAULT_MAX_VIOLATIONS",
    "check_architecture",
    "detect_style",
    "load_config",
    "parse_layer",
]

DEFAULT_MAX_VIOLATIONS = 50

_Data = dict[str, Any]

# --------------------------------------------------------------------------
# Configuration (the only I/O in this module)
# --------------------------------------------------------------------------

_CORRAL_TABLE = "tool.corral.architecture"
#: Keys of [tool.corral.architecture] that belong to other steps (discovery,
#: graph, the exit status): accepted and left alone here.
_KEYS_OWNED_ELSEWHERE = frozenset({"exclude", "exclude_tests", "exclude_type_checking", "fail_on"})
_CORRAL_KEYS = frozenset({"containers", "layers", "independent", "forbidden", "ignore_imports"})
_CORRAL_FORBIDDEN_KEYS = frozenset(
    {"name", "source", "forbidden", "ignore_imports", "allow_indirect_imports"}
)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Reader:
    """Validation helpers that know which file they read, so every error names
    the file and the offending key."""

    def __init__(self, file: str, *, lists_only: bool = False) -> None:
        self.file = file
        # corral's own table wants real TOML arrays; import-linter's INI files
        # can only spell a list as a (multi-line) string.
        self.lists_only = lists_only

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        raise ArchitectureConfigError(message, file=self.file, key=key)

    def module(self, value: Any, key: str, *, wildcards: bool) -> str:
        """A dotted module name (or, where allowed, a ``*``/``**`` expression)."""
        if not isinstance(value, str):
            self.fail(f"expected a module name (a string), got {_type_name(value)}", key)
        name = value.strip()
        if not name:
            self.fail("empty module name", key)
        for segment in name.split("."):
            if wildcards and segment in ("*", "**"):
                continue
            if not _SEGMENT.match(segment):
                what = "module name or wildcard expression" if wildcards else "module name"
                self.fail(f"{name!r} is not a valid {what}", key)
        return name

    def strings(self, value: Any, key: str) -> list[str]:
        """A list of strings; a lone string is one item, or one item per line
        (INI multi-line values arrive as one string)."""
        if isinstance(value, str) and not self.lists_only:
            return [line.strip() for line in value.splitlines() if line.strip()]
        if not isinstance(value, list):
            self.fail(f"expected a list of strings, got {_type_name(value)}", key)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"expected a string, got {_type_name(item)}", f"{key}[{i}]")
        return [item.strip() for item in value]

    def modules(self, value: Any, key: str, *, wildcards: bool, minimum: int = 1) -> list[str]:
        items = self.strings(value, key)
        if len(items) < minimum:
            self.fail(f"needs at least {minimum} module name{'s' if minimum > 1 else ''}", key)
        return [
            self.module(item, f"{key}[{i}]", wildcards=wildcards) for i, item in enumerate(items)
        ]

    def boolean(self, value: Any, key: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.fail(f"expected true or false, got {value!r}", key)

    def ignore_imports(self, value: Any, key: str) -> list[list[str]]:
        """``importer -> imported`` lines, as ``[importer, imported]`` pairs."""
        pairs: list[list[str]] = []
        for i, item in enumerate(self.strings(value, key)):
            where = f"{key}[{i}]"
            importer, arrow, imported = item.partition("->")
            if not arrow:
                self.fail(f"expected 'importer -> imported', got {item!r}", where)
            pairs.append(
                [
                    self.module(importer, where, wildcards=True),
                    self.module(imported, where, wildcards=True),
                ]
            )
        return pairs

    def layers(self, value: Any, key: str) -> tuple[list[list[str]], list[bool], list[str]]:
        """The ``layers`` list: names per layer, whether each layer's siblings
        are independent, and the optional (parenthesised) names."""
        items = self.strings(value, key)
        if not items:
            self.fail("needs at least one layer", key)
        layers: list[list[str]] = []
        independent: list[bool] = []
        optional: list[str] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"{key}[{i}]"
            try:
                names, indep, opt = parse_layer(item)
            except ValueError as exc:
                self.fail(str(exc), where)
            for name in names:
                self.module(name, where, wildcards=False)
                if name in seen:
                    self.fail(f"layer {name!r} is listed twice", where)
                seen.add(name)
            layers.append(names)
            independent.append(indep)
            optional.extend(opt)
        return layers, independent, sorted(optional)


def parse_layer(text: str) -> tuple[list[str], bool, list[str]]:
    """One ``layers`` entry: ``"a"``, ``"a | b"`` (independent siblings) or
    ``"a : b"`` (siblings that may import each other); ``"(a)"`` marks an
    optional layer. Returns (names, independent, optional names).

    Raises :class:`ValueError` for an empty layer or mixed separators, which
    import-linter rejects too.
    """
    has_pipe, has_colon = "|" in text, ":" in text
    if has_pipe and has_colon:
        raise ValueError(f"layer {text.strip()!r} mixes '|' and ':' separators")
    pieces = [p.strip() for p in re.split(r"[|:]", text)]
    names: list[str] = []
    optional: list[str] = []
    for piece in pieces:
        name = piece
        if piece.startswith("(") and piece.endswith(")"):
            name = piece[1:-1].strip()
            optional.append(name)
        if not name:
            raise ValueError(f"empty layer in {text.strip()!r}" if text.strip() else "empty layer")
        names.append(name)
    return names, not has_colon, optional


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _rel(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _read_toml(path: Path, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(read_capped(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ArchitectureConfigError(f"cannot read: {why or exc}", file=file) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _TOML_POSITION.search(message)
        if m:
            message = f"invalid TOML at line {m[1]}, column {m[2]}: {message[: m.start()]}"
        else:
            message = f"invalid TOML: {message}"
        raise ArchitectureConfigError(message, file=file) from exc


def _table(value: Any, reader: _Reader, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        reader.fail(f"expected a table, got {_type_name(value)}", key)
    return value


def _corral_contracts(table: dict[str, Any], reader: _Reader) -> list[_Data]:
    """Normalise ``[tool.corral.architecture]`` into contracts."""
    for key in table:
        if key not in _CORRAL_KEYS and key not in _KEYS_OWNED_ELSEWHERE:
            reader.fail(
                f"unknown key {key!r} (expected one of: "
                f"{', '.join(sorted(_CORRAL_KEYS | _KEYS_OWNED_ELSEWHERE))})",
                f"{_CORRAL_TABLE}.{key}",
            )
    k = _CORRAL_TABLE
    ignore = (
        reader.ignore_imports(table["ignore_imports"], f"{k}.ignore_imports")
        if "ignore_imports" in table
        else []
    )
    contracts: list[_Data] = []
    if "containers" in table and "layers" not in table:
        reader.fail("'containers' needs 'layers'", f"{k}.containers")
    if "layers" in table:
        layers, independent, optional = reader.layers(table["layers"], f"{k}.layers")
        containers = (
            reader.modules(table["containers"], f"{k}.containers", wildcards=True)
            if "containers" in table
            else []
        )
        contracts.append(
            _layers_contract(
                _layers_title(layers, independent),
                layers,
                independent,
                optional,
                containers,
                ignore,
            )
        )
    if "independent" in table:
        groups = table["independent"]
        if not isinstance(groups, list):
            reader.fail(
                f"expected a list of module lists, got {_type_name(groups)}", f"{k}.independent"
            )
        for i, group in enumerate(groups):
            where = f"{k}.independent[{i}]"
            if not isinstance(group, list):
                reader.fail(f"expected a list of module names, got {_type_name(group)}", where)
            members = reader.modules(group, where, wildcards=True, minimum=2)
            contracts.append(
                {
                    "name": f"independence of {', '.join(members)}",
                    "kind": "independence",
                    "modules": members,
                    "ignore_imports": ignore,
                }
            )
    if "forbidden" in table:
        entries = table["forbidden"]
        if not isinstance(entries, list):
            reader.fail(
                f"expected an array of tables ([[{k}.forbidden]]), got {_type_name(entries)}",
                f"{k}.forbidden",
            )
        for i, entry in enumerate(entries):
            where = f"{k}.forbidden[{i}]"
            entry = _table(entry, reader, where)
            for key in entry:
                if key not in _CORRAL_FORBIDDEN_KEYS:
                    reader.fail(
                        f"unknown key {key!r} (expected one of: "
                        f"{', '.join(sorted(_CORRAL_FORBIDDEN_KEYS))})",
                        f"{where}.{key}",
                    )
            for required in ("source", "forbidden"):
                if required not in entry:
                    reader.fail(f"missing {required!r}", f"{where}.{required}")
            source = reader.modules(entry["source"], f"{where}.source", wildcards=True)
            forbidden = reader.modules(entry["forbidden"], f"{where}.forbidden", wildcards=True)
            name = entry.get("name", f"{', '.join(source)} must not import {', '.join(forbidden)}")
            if not isinstance(name, str) or not name.strip():
                reader.fail("expected a non-empty string", f"{where}.name")
            own_ignore = (
                reader.ignore_imports(entry["ignore_imports"], f"{where}.ignore_imports")
                if "ignore_imports" in entry
                else []
            )
            contracts.append(
                {
                    "name": name.strip(),
                    "kind": "forbidden",
                    "source": source,
                    "forbidden": forbidden,
                    "allow_indirect": reader.boolean(
                        entry.get("allow_indirect_imports", False),
                        f"{where}.allow_indirect_imports",
                    ),
                    "as_packages": True,
                    "ignore_imports": ignore + own_ignore,
                }
            )
    return contracts


def _layers_title(layers: list[list[str]], independent: list[bool]) -> str:
    return "layers " + " > ".join(
        (" | " if indep else " : ").join(names)
        for names, indep in zip(layers, independent, strict=True)
    )


def _layers_contract(
    name: str,
    layers: list[list[str]],
    independent: list[bool],
    optional: list[str],
    containers: list[str],
    ignore: list[list[str]],
) -> _Data:
    return {
        "name": name,
        "kind": "layers",
        "layers": layers,
        "independent": independent,
        "optional": optional,
        "containers": containers,
        "ignore_imports": ignore,
    }


def _importlinter_contract(
    options: Mapping[str, Any], key: str, default_name: str, reader: _Reader
) -> _Data:
    """Normalise one import-linter contract. Unknown options (``exhaustive``,
    ``unmatched_ignore_imports_alerting``, ``broken_contract_guidance`` …) are
    accepted and ignored, since import-linter owns that format."""
    kind = options.get("type")
    if not isinstance(kind, str) or not kind.strip():
        reader.fail("missing contract 'type'", f"{key}.type")
    kind = kind.strip()
    name = options.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        reader.fail("expected a non-empty string", f"{key}.name")
    name = name.strip()
    ignore = (
        reader.ignore_imports(options["ignore_imports"], f"{key}.ignore_imports")
        if "ignore_imports" in options
        else []
    )

    def required(option: str) -> Any:
        if option not in options:
            reader.fail(f"missing {option!r} for a {kind} contract", f"{key}.{option}")
        return options[option]

    if kind == "layers":
        layers, independent, optional = reader.layers(required("layers"), f"{key}.layers")
        containers = (
            reader.modules(options["containers"], f"{key}.containers", wildcards=True)
            if "containers" in options
            else []
        )
        return _layers_contract(name, layers, independent, optional, containers, ignore)
    if kind == "independence":
        return {
            "name": name,
            "kind": "independence",
            "modules": reader.modules(required("modules"), f"{key}.modules", wildcards=True),
            "ignore_imports": ignore,
        }
    if kind == "forbidden":
        return {
            "name": name,
            "kind": "forbidden",
            "source": reader.modules(
                required("source_modules"), f"{key}.source_modules", wildcards=True
            ),
            "forbidden": reader.modules(
                required("forbidden_modules"), f"{key}.forbidden_modules", wildcards=True
            ),
            "allow_indirect": reader.boolean(
                options.get("allow_indirect_imports", False), f"{key}.allow_indirect_imports"
            ),
            "as_packages": reader.boolean(options.get("as_packages", True), f"{key}.as_packages"),
            "ignore_imports": ignore,
        }
    return {"name": name, "kind": kind, "unchecked": True}


def _read_ini(path: Path, file: str) -> list[_Data] | None:
    """Contracts of an INI file with an ``[importlinter]`` section, else ``None``.

    A ``setup.cfg`` that fails to parse and never mentions import-linter is
    not ours to judge, so it is skipped rather than failing the analysis.
    """
    reader = _Reader(file)
    try:
        text = read_capped(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reader.fail(f"cannot read: {exc.strerror if isinstance(exc, OSError) else exc}")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=file)
    except configparser.Error as exc:
        if "[importlinter" not in text:
            return None
        if isinstance(exc, configparser.ParsingError) and exc.errors:
            first: int = exc.errors[0][0]
            lines = text.splitlines()
            line = lines[first - 1].strip() if 0 < first <= len(lines) else ""
            reader.fail(f"invalid INI at line {first}: cannot parse {line!r}")
        at = getattr(exc, "lineno", None)
        where = f" at line {at}" if at is not None else ""
        reader.fail(f"invalid INI{where}: {exc.message.splitlines()[0]}")
    if "importlinter" not in parser.sections():
        return None
    contracts: list[_Data] = []
    for section in parser.sections():
        if not section.startswith("importlinter:"):
            continue
        contract_id = section.split(":")[-1]
        options: dict[str, Any] = {}
        for opt, value in parser.items(section):
            options[opt] = value.strip()
        contracts.append(_importlinter_contract(options, section, contract_id, reader))
    return contracts


def _toml_importlinter(session: dict[str, Any], reader: _Reader) -> list[_Data]:
    key = "tool.importlinter.contracts"
    entries = session.get("contracts", [])
    if not isinstance(entries, list):
        reader.fail(f"expected an array of tables, got {_type_name(entries)}", key)
    contracts: list[_Data] = []
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        entry = _table(entry, reader, where)
        default = entry.get("id") if isinstance(entry.get("id"), str) else f"contract {i + 1}"
        contracts.append(_importlinter_contract(entry, where, str(default), reader))
    return contracts


def load_config(
    project_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """Read the architecture declared for the project in ``project_dir``.

    corral's table (layer names relative to each container when
    ``containers`` is given; ``exclude``, ``exclude_tests``,
    ``exclude_type_checking`` and ``fail_on`` belong to other steps)::

        [tool.corral.architecture]
        containers = ["myapp"]                         # optional
        layers = ["api", "services | jobs", "domain"]  # top first; "a : b" too
        independent = [["myapp.x", "myapp.y"]]         # groups, >= 2 each
        ignore_imports = ["myapp.*.legacy -> myapp.api"]  # all contracts
        [[tool.corral.architecture.forbidden]]
        name = "domain stays pure"                     # optional
        source = ["myapp.domain"]
        forbidden = ["myapp.api", "requests"]
        ignore_imports = []                            # optional, this one only
        allow_indirect_imports = false                 # optional

    Looked up in this order: ``[tool.corral.architecture]`` in
    ``pyproject.toml`` (when it declares at least one contract), then an
    import-linter configuration in the order import-linter itself reads them
    (``setup.cfg``, ``.importlinter``, then ``[tool.importlinter]`` in
    ``pyproject.toml``). Returns ``None`` when nothing is declared, else
    ``{"source": "corral"|"importlinter", "file": <path>, "contracts": [...]}``
    with the path relative to ``root`` (to ``project_dir`` when ``root`` is
    not given). Raises :class:`~corral.core.errors.ArchitectureConfigError` naming
    the file and key for anything malformed.
    """
    base = Path(project_dir)
    anchor = Path(root) if root is not None else base
    pyproject = base / "pyproject.toml"
    data: dict[str, Any] | None = None
    if pyproject.is_file():
        file = _rel(pyproject, anchor)
        reader = _Reader(file)
        data = _read_toml(pyproject, file)
        tool = data.get("tool")
        corral = tool.get("corral") if isinstance(tool, dict) else None
        if isinstance(corral, dict) and "architecture" in corral:
            table = _table(corral["architecture"], reader, _CORRAL_TABLE)
            contracts = _corral_contracts(table, _Reader(file, lists_only=True))
            if contracts:
                return {"source": "corral", "file": file, "contracts": contracts}
    for name in ("setup.cfg", ".importlinter"):
        path = base / name
        if path.is_file():
            file = _rel(path, anchor)
            found = _read_ini(path, file)
            if found is not None:
                return {"source": "importlinter", "file": file, "contracts": found}
    if data is not None:
        tool = data.get("tool")
        session = tool.get("importlinter") if isinstance(tool, dict) else None
        if session:
            file = _rel(pyproject, anchor)
            reader = _Reader(file)
            session = _table(session, reader, "tool.importlinter")
            return {
                "source": "importlinter",
                "file": file,
                "contracts": _toml_importlinter(session, reader),
            }
    return None


# --------------------------------------------------------------------------
# Checking (pure)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One member of a contract scope: a layer, a sibling, an independent
    module, a source or a forbidden module."""

    name: str
    layer: int = 0
    exact: bool = False  # import-linter's as_packages = False


@dataclass
class _Scope:
    """Units checked together; ``rules[t]`` are the units that may not reach
    unit ``t``. Chains only pass through modules outside every unit."""

    units: list[_Unit]
    rules: dict[int, set[int]]
    indirect: bool


class _Graph:
    """The module graph as adjacency lists, external top-level names added as
    sink nodes so forbidden external packages are checked like modules."""

    def __init__(
        self,
        graph: Mapping[str, Any],
        modules: Mapping[str, Mapping[str, Any]],
        external: Sequence[Mapping[str, Any]],
    ) -> None:
        internal: set[str] = set(graph.get("modules", ())) | set(modules)
        self.lines: dict[tuple[str, str], list[int]] = {}
        succ: dict[str, set[str]] = {}
        for e in graph.get("edges", ()):
            a, b = e["importer"], e["imported"]
            internal.update((a, b))
            if a != b:
                succ.setdefault(a, set()).add(b)
                self.lines[(a, b)] = sorted(e.get("lines") or ())
        self.internal = internal
        self.external: set[str] = set()
        for e in external:
            a, b = e["importer"], e["imported"]
            if b in internal:
                continue
            self.external.add(b)
            succ.setdefault(a, set()).add(b)
            known = self.lines.setdefault((a, b), [])
            known.extend(e.get("lines") or ())
            known.sort()
        self.succ: dict[str, list[str]] = {a: sorted(bs) for a, bs in succ.items()}
        pred: dict[str, list[str]] = {}
        for a in sorted(self.succ):
            for b in self.succ[a]:
                pred.setdefault(b, []).append(a)
        self.pred = pred
        self.nodes = sorted(internal | self.external)
        self.modules = sorted(internal)  # what wildcard expressions resolve against
        self.path: dict[str, Any] = {m: info.get("path") for m, info in modules.items()}

    def line(self, a: str, b: str) -> int | None:
        lines = self.lines.get((a, b))
        return lines[0] if lines else None


def _expression(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.split("."):
        if segment == "*":
            parts.append(r"[^.]+")
        elif segment == "**":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        else:
            parts.append(re.escape(segment))
    return re.compile(r"\.".join(parts) + r"\Z")


def _resolve(names: Iterable[str], nodes: Sequence[str]) -> list[str]:
    """Expand wildcard expressions against the graph's modules (sorted,
    unique); plain names are kept as given, present or not."""
    out: set[str] = set()
    for name in names:
        if "*" in name:
            rx = _expression(name)
            out.update(n for n in nodes if rx.match(n))
        else:
            out.add(name)
    return sorted(out)


def _ignored(g: _Graph, pairs: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
    if not pairs:
        return set()
    plain = {(a, b) for a, b in pairs if "*" not in a and "*" not in b}
    wild = [(_expression(a), _expression(b)) for a, b in pairs if "*" in a or "*" in b]
    out = {p for p in plain if p in g.lines}
    if wild:
        for edge in g.lines:
            if any(ra.match(edge[0]) and rb.match(edge[1]) for ra, rb in wild):
                out.add(edge)
    return out


def _membership(units: Sequence[_Unit], nodes: Iterable[str]) -> dict[str, int]:
    """Module -> index of the unit it belongs to (longest matching name)."""
    prefix = {u.name: i for i, u in enumerate(units) if not u.exact}
    exact = {u.name: i for i, u in enumerate(units) if u.exact}
    out: dict[str, int] = {}
    for node in nodes:
        if node in exact:
            out[node] = exact[node]
            continue
        name = node
        while True:
            if name in prefix:
                out[node] = prefix[name]
                break
            name, dot, _ = name.rpartition(".")
            if not dot:
                break
    return out


@dataclass
class _Found:
    """Violations of one contract before they are listed."""

    direct: dict[tuple[str, str], tuple[str, str]]  # edge -> (importer unit, imported unit)
    # (importer, target unit name) -> (distance, first hop, scope id)
    indirect: dict[tuple[str, str], tuple[int, str, int]]


class _ScopeRun:
    """Checks one scope; keeps what chain reconstruction needs."""

    def __init__(self, g: _Graph, scope: _Scope, ignored: set[tuple[str, str]]) -> None:
        self.g = g
        self.scope = scope
        self.ignored = ignored
        self.unit_of = _membership(scope.units, g.nodes)
        self.members: dict[int, list[str]] = {}
        for node in g.nodes:
            u = self.unit_of.get(node)
            if u is not None:
                self.members.setdefault(u, []).append(node)
        self.dist: dict[int, dict[str, int]] = {}

    def succ(self, a: str) -> Iterable[str]:
        if not self.ignored:
            return self.g.succ.get(a, ())
        return (b for b in self.g.succ.get(a, ()) if (a, b) not in self.ignored)

    def checked(self, into: set[tuple[str, str]]) -> None:
        """Add the edges this scope checks: module edges between different
        units, and edges into an external package only where the rules forbid
        them (a forbidden contract's source importing a forbidden external)."""
        rules = self.scope.rules
        for a, ua in self.unit_of.items():
            if a in self.g.external:
                continue
            for b in self.succ(a):
                ub = self.unit_of.get(b)
                if ub is None or ub == ua:
                    continue
                if b not in self.g.external or ua in rules.get(ub, ()):
                    into.add((a, b))

    def distances(self, target: int) -> dict[str, int]:
        """Reverse BFS from the target's modules through modules outside every
        unit: hops to the nearest target module."""
        if target in self.dist:
            return self.dist[target]
        dist = {m: 0 for m in self.members.get(target, ())}
        queue = deque(self.members.get(target, ()))
        while queue:
            node = queue.popleft()
            d = dist[node] + 1
            for p in self.g.pred.get(node, ()):
                if p in dist or p in self.unit_of or (p, node) in self.ignored:
                    continue
                dist[p] = d
                queue.append(p)
        self.dist[target] = dist
        return dist

    def run(self, found: _Found, scope_id: int) -> None:
        units = self.scope.units
        for target in sorted(self.scope.rules):
            dist = self.distances(target) if self.scope.indirect else {}
            for source in sorted(self.scope.rules[target]):
                for m in self.members.get(source, ()):
                    if m in self.g.external:
                        continue
                    best: tuple[int, str] | None = None
                    hit = False
                    for b in self.succ(m):
                        ub = self.unit_of.get(b)
                        if ub == target:
                            hit = True
                            found.direct[(m, b)] = (units[source].name, units[target].name)
                        elif ub is None and b in dist and (best is None or dist[b] < best[0]):
                            best = (dist[b], b)  # successors are sorted: first wins ties
                    if not hit and best is not None:
                        key = (m, units[target].name)
                        old = found.indirect.get(key)
                        if old is None or (best[0] + 1, best[1]) < old[:2]:
                            found.indirect[key] = (best[0] + 1, best[1], scope_id)

    def chain(self, start: str, first: str, target_name: str) -> list[str]:
        target = next(i for i, u in enumerate(self.scope.units) if u.name == target_name)
        dist = self.distances(target)
        chain = [start, first]
        node = first
        while self.unit_of.get(node) != target:
            want = dist[node] - 1
            node = next(z for z in self.succ(node) if dist.get(z) == want)
            chain.append(node)
        return chain


@dataclass
class _Plan:
    """How one contract is checked (see :func:`_scopes`)."""

    scopes: list[_Scope] = field(default_factory=list)
    detail: str = ""
    modules: list[str] | None = None  # the report's ``modules``
    # declared names matching no module: required ones (they break the
    # contract) and all of them, optional layers included (for the detail of
    # a contract that matches nothing at all)
    missing: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    matched: bool = False  # whether any member (a forbidden contract: any source) matches


def _layer_scopes(contract: Mapping[str, Any], nodes: Sequence[str]) -> _Plan:
    """One scope per container that matches a module (or one scope without
    containers), with the names that match nothing."""
    declared: list[str] = list(contract.get("containers") or [])
    layers: list[list[str]] = contract["layers"]
    independent: list[bool] = contract.get("independent") or [True] * len(layers)
    optional = set(contract.get("optional") or ())
    node_set = set(nodes)
    plan = _Plan()
    if declared:
        plan.unmatched = _unmatched(declared, node_set, nodes)
        plan.missing = list(plan.unmatched)
        containers = [c for c in _resolve(declared, nodes) if _present(c, node_set, nodes)]
    else:
        containers = [""]
    for container in containers:
        units: list[_Unit] = []
        for index, names in enumerate(layers):
            for name in names:
                full = f"{container}.{name}" if container else name
                units.append(_Unit(full, index))
                if _present(full, node_set, nodes):
                    plan.matched = True
                else:
                    plan.unmatched.append(full)
                    if name not in optional:
                        plan.missing.append(full)
        rules: dict[int, set[int]] = {}
        for t, ut in enumerate(units):
            for s, us in enumerate(units):
                below = us.layer > ut.layer
                siblings = s != t and us.layer == ut.layer and independent[ut.layer]
                if below or siblings:
                    rules.setdefault(t, set()).add(s)
        plan.scopes.append(_Scope(units, rules, indirect=True))
    return plan


def _present(name: str, node_set: set[str], nodes: Sequence[str]) -> bool:
    if name in node_set:
        return True
    prefix = name + "."
    return any(n.startswith(prefix) for n in nodes)


def _unmatched(names: Iterable[str], node_set: set[str], nodes: Sequence[str]) -> list[str]:
    """The declared names (or wildcard expressions) that match no module."""
    out: list[str] = []
    for name in names:
        if "*" in name:
            rx = _expression(name)
            if not any(rx.match(n) for n in nodes):
                out.append(name)
        elif not _present(name, node_set, nodes):
            out.append(name)
    return out


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _scopes(contract: Mapping[str, Any], g: _Graph) -> _Plan:
    """How a normalised contract is checked: its scopes, a detail sentence, the
    members checked (wildcards resolved) for the report's ``modules``, and the
    declared names that match no module."""
    kind = contract["kind"]
    modules = g.modules
    node_set = set(modules)
    if kind == "layers":
        plan = _layer_scopes(contract, modules)
        where = (
            f" in containers {', '.join(contract['containers'])}"
            if contract.get("containers")
            else ""
        )
        plan.detail = f"{len(contract['layers'])} layers, top first{where}"
        return plan
    if kind == "independence":
        members = _resolve(contract["modules"], modules)
        units = [_Unit(m) for m in members]
        pairs = {t: {s for s in range(len(units)) if s != t} for t in range(len(units))}
        unmatched = _unmatched(contract["modules"], node_set, modules)
        return _Plan(
            [_Scope(units, pairs, indirect=True)],
            f"{', '.join(members) or 'no modules'}: none may import another",
            members,
            missing=unmatched,
            unmatched=unmatched,
            matched=any(_present(m, node_set, modules) for m in members),
        )
    # forbidden
    exact = not contract.get("as_packages", True)
    sources = _resolve(contract["source"], modules)
    forbidden = _resolve(contract["forbidden"], modules)
    names = sorted(set(sources) | set(forbidden))
    index = {n: i for i, n in enumerate(names)}
    units = [_Unit(n, exact=exact) for n in names]
    rules: dict[int, set[int]] = {}
    for f in forbidden:
        for s in sources:
            if not (s == f if exact else _overlap(s, f)):
                rules.setdefault(index[f], set()).add(index[s])
    indirect = not contract.get("allow_indirect", False)
    unmatched = _unmatched(contract["source"], node_set, modules)
    return _Plan(
        [_Scope(units, rules, indirect=indirect)],
        f"{', '.join(sources) or 'no modules'} must not import {', '.join(forbidden)}"
        f"{'' if indirect else ' directly (indirect imports allowed)'}",
        sources,
        missing=unmatched,
        unmatched=unmatched,
        matched=any(_present(m, node_set, modules) for m in sources),
    )


def _check_contract(
    contract: Mapping[str, Any],
    g: _Graph,
    max_violations: int,
    checked: set[tuple[str, str]],
    violating: set[tuple[str, str]],
) -> tuple[_Data, str | None]:
    """One contract's report entry, and the problem to list at the top level
    when some of its declared names match no module."""
    kind = contract["kind"]
    base: _Data = {
        "name": contract["name"],
        "kind": kind,
        "layers": [list(names) for names in contract["layers"]] if kind == "layers" else None,
        "modules": None,
    }
    if contract.get("unchecked") or kind not in ("layers", "independence", "forbidden"):
        return {
            **base,
            "kept": None,
            "violation_count": 0,
            "truncated": False,
            "violations": [],
            "detail": f"contract type {kind!r} is not checked by corral",
        }, None
    plan = _scopes(contract, g)
    base["modules"] = plan.modules
    if not plan.matched:
        names = ", ".join(plan.unmatched) or "no member declared"
        return {
            **base,
            "kept": False,
            "violation_count": 0,
            "truncated": False,
            "violations": [],
            "detail": f"{plan.detail}; no module matches: {names}",
        }, f"{contract['name']}: no module matches: {names}; nothing was checked"
    ignored = _ignored(g, contract.get("ignore_imports") or [])
    scopes = plan.scopes
    found = _Found({}, {})
    runs: list[_ScopeRun] = []
    for i, scope in enumerate(scopes):
        run = _ScopeRun(g, scope, ignored)
        run.checked(checked)
        run.run(found, i)
        runs.append(run)
    violating.update(found.direct)
    count = len(found.direct) + len(found.indirect)
    rows: list[tuple[bool, str, str, str]] = [(False, a, b, "") for a, b in found.direct]
    rows += [(True, a, t, t) for a, t in found.indirect]
    rows.sort()
    listed: list[_Data] = []
    for indirect, a, b, t in rows[: max(0, max_violations)]:
        if not indirect:
            ua, ub = found.direct[(a, b)]
            chain = [a, b]
        else:
            _dist, first, scope_id = found.indirect[(a, t)]
            chain = runs[scope_id].chain(a, first, t)
            ua = scopes[scope_id].units[runs[scope_id].unit_of[a]].name
            ub = t
        listed.append(
            {
                "importer": a,
                "imported": chain[-1],
                "line": g.line(a, chain[1]),
                "path": g.path.get(a),
                "chain": chain,
                "direct": not indirect,
                "importer_layer": ua,
                "imported_layer": ub,
            }
        )
    detail = plan.detail
    if plan.missing:
        detail += f"; no module matches: {', '.join(plan.missing)}"
    if count:
        n_direct, n_indirect = len(found.direct), len(found.indirect)
        detail += f"; broken: {n_direct} direct and {n_indirect} indirect violation"
        detail += "s" if n_indirect != 1 else ""
    else:
        detail += "; broken" if plan.missing else "; kept"
    problem = (
        f"{contract['name']}: no module matches: {', '.join(plan.missing)}; "
        "the other members were checked"
        if plan.missing
        else None
    )
    return {
        **base,
        "kept": count == 0 and not plan.missing,
        "violation_count": count,
        "truncated": len(rows) > max(0, max_violations),
        "violations": listed,
        "detail": detail,
    }, problem


def check_architecture(
    config: dict[str, Any] | None,
    graph: dict[str, Any],
    modules: dict[str, dict[str, Any]],
    external: list[dict[str, Any]] | None = None,
    *,
    max_violations: int = DEFAULT_MAX_VIOLATIONS,
) -> dict[str, Any]:
    """The report's ``LAYERS`` object: check the declared contracts (or, when
    ``config`` is ``None``, the ones implied by the detected style) against the
    import graph. Pure and deterministic."""
    g = _Graph(graph, modules, external or [])
    if config is not None:
        contracts: list[_Data] = list(config.get("contracts") or [])
        source = str(config.get("source", "corral"))
        config_file = config.get("file")
        style: str | None = "declared"
        where = f" in {config_file}" if config_file else ""
        what = "[tool.corral.architecture]" if source == "corral" else "import-linter configuration"
        plural = "s" if len(contracts) != 1 else ""
        detail = f"{len(contracts)} contract{plural} declared{where} ({what})"
    else:
        detected = detect_style(graph, modules)
        config_file = None
        if detected is None:
            return {
                "source": "none",
                "config_file": None,
                "style": None,
                "detail": (
                    "No architecture declared, and no layering recognised from package names "
                    "or from the direction of imports between sibling packages."
                ),
                "contracts": [],
                "violations": 0,
                "checked_edges": 0,
                "conformance": None,
                "problems": [],
            }
        source, style, detail = "detected", detected["style"], detected["detail"]
        contracts = detected["contracts"]
    checked: set[tuple[str, str]] = set()
    violating: set[tuple[str, str]] = set()
    results: list[_Data] = []
    problems: list[str] = []
    for contract in contracts:
        result, problem = _check_contract(contract, g, max_violations, checked, violating)
        results.append(result)
        if problem is not None:
            problems.append(problem)
    if config is not None:
        detail += f", {sum(r['kept'] is False for r in results)} broken"
        unchecked = sum(r["kept"] is None for r in results)
        if unchecked:
            detail += f", {unchecked} not checked"
    conformance = round(1 - len(violating) / len(checked), 4) if checked else None
    return {
        "source": source,
        "config_file": config_file,
        "style": style,
        "detail": detail,
        "contracts": results,
        "violations": sum(r["violation_count"] for r in results),
        "checked_edges": len(checked),
        "conformance": conformance,
        "problems": problems,
    }


# --------------------------------------------------------------------------
# Style detection (pure)
# --------------------------------------------------------------------------

_Tier = frozenset[str]


@dataclass(frozen=True)
class _Style:
    style: str
    label: str
    required: tuple[_Tier, ...]  # each must be matched by some sibling name
    tiers: tuple[_Tier, ...]  # top first
    min_tiers: int = 0  # for "layered": how many tiers must be present instead


def _t(*names: str) -> _Tier:
    return frozenset(names)


_PRESENTATION = _t("presentation", "api", "ui", "web", "cli", "gui", "rest")
_STYLES: tuple[_Style, ...] = (
    _Style(
        "hexagonal",
        "hexagonal (ports and adapters)",
        (_t("domain", "core"), _t("ports"), _t("adapters")),
        (
            _t("adapters"),
            _t("application", "services", "service", "use_cases", "usecases"),
            _t("ports"),
            _t("domain", "core"),
        ),
    ),
    _Style(
        "clean",
        "clean architecture",
        (_t("entities"), _t("use_cases", "usecases")),
        (
            _t("frameworks", "drivers", "frameworks_and_drivers", "infrastructure"),
            _t("interface_adapters", "adapters", "gateways", "controllers", "presenters"),
            _t("use_cases", "usecases"),
            _t("entities"),
        ),
    ),
    _Style(
        "ddd",
        "DDD layering",
        (_t("domain"), _t("application"), _t("infrastructure")),
        (
            _t("interfaces", "interface", "infrastructure") | _PRESENTATION,
            _t("application"),
            _t("domain"),
        ),
    ),
    _Style(
        "mvc",
        "MVC",
        (_t("models", "model"), _t("views", "view"), _t("controllers", "controller")),
        (_t("controllers", "controller"), _t("views", "view"), _t("models", "model")),
    ),
    _Style(
        "mvc",
        "Django-style MVC",
        (_t("models"), _t("views"), _t("urls", "templates", "admin", "apps", "migrations")),
        (_t("urls", "admin"), _t("views"), _t("forms", "serializers"), _t("models")),
    ),
    _Style(
        "layered",
        "layered architecture",
        (),
        (
            _PRESENTATION,
            _t("services", "service", "application", "business", "logic", "domain"),
            _t("data", "repository", "repositories", "dal", "persistence", "db", "database")
            | _t("storage", "models"),
        ),
        min_tiers=2,
    ),
)
_DJANGO = _STYLES[4]
_PRIORITY = {"hexagonal": 0, "clean": 1, "ddd": 2, "mvc": 3, "layered": 4}


def _norm(name: str) -> str:
    return name.lstrip("_").lower()


def _match(style: _Style, children: Sequence[str]) -> list[list[str]] | None:
    """Layers (child names per tier, top first) when ``children`` fit the style."""
    by_norm = {c: _norm(c) for c in children}
    if not all(any(n in req for n in by_norm.values()) for req in style.required):
        return None
    taken: set[str] = set()
    layers: list[list[str]] = []
    for tier in style.tiers:
        names = sorted(c for c, n in by_norm.items() if n in tier and c not in taken)
        taken.update(names)
        if names:
            layers.append(names)
    if len(layers) < max(2, style.min_tiers):
        return None
    return layers


@dataclass
class _Detection:
    style: str
    package: str  # "" for the set of top-level packages
    size: int
    contract: _Data
    sentence: str


def _tree(nodes: Iterable[str]) -> dict[str, list[str]]:
    """Parent ("" for the top) -> sorted child names (last segments), over all
    prefixes, so namespace directories count as packages."""
    children: dict[str, set[str]] = {}
    for node in nodes:
        parts = node.split(".")
        for i in range(len(parts)):
            children.setdefault(".".join(parts[:i]), set()).add(parts[i])
    return {p: sorted(c) for p, c in children.items()}


def _full(package: str, child: str) -> str:
    return f"{package}.{child}" if package else child


def _layers_text(layers: Sequence[Sequence[str]]) -> str:
    return " > ".join(" : ".join(names) for names in layers)


def _detected_contract(name: str, layers: list[list[str]], containers: list[str]) -> _Data:
    return _layers_contract(name, layers, [False] * len(layers), [], containers, [])


def _by_name(
    package: str, children: list[str], tree: dict[str, list[str]]
) -> tuple[str, _Data, str] | None:
    where = f"package {package}" if package else "the top-level packages"
    for style in _STYLES:
        layers = _match(style, children)
        if layers is None:
            continue
        full = [[_full(package, c) for c in names] for names in layers]
        names = ", ".join(sorted(c for names in layers for c in names))
        sentence = f"{style.label} in {where} from the names {names} ({_layers_text(full)})"
        return (
            style.style,
            _detected_contract(f"{style.style} layers in {package or 'top level'}", full, []),
            sentence,
        )
    # Django project: apps below the package, each with models + views and a
    # Django signature (urls, admin, apps or migrations); the apps become
    # containers and every layer is optional, since apps differ in what they have.
    apps = [c for c in children if _is_django_app(tree.get(_full(package, c), []))]
    if apps:
        layers = [sorted(t) for t in _DJANGO.tiers]
        containers = [_full(package, a) for a in apps]
        sentence = (
            f"Django-style MVC in the apps {', '.join(containers)} of {where} from their "
            f"models and views modules ({_layers_text(layers)} in each app)"
        )
        contract = _detected_contract(
            f"mvc layers in apps of {package or 'top level'}", layers, containers
        )
        contract["optional"] = sorted(n for names in layers for n in names)
        return "mvc", contract, sentence
    return None


def _is_django_app(children: Sequence[str]) -> bool:
    names = {_norm(c) for c in children}
    return {"models", "views"} <= names and bool(names & {"urls", "admin", "apps", "migrations"})


def _by_direction(
    package: str, children: list[str], graph: Mapping[str, Any]
) -> tuple[_Data, str] | None:
    """Layers = levels of the DAG between sibling sub-packages, when it is one
    and is at least three levels deep."""
    child_set = set(children)
    prefix = f"{package}." if package else ""

    def child_of(module: str) -> str | None:
        if not module.startswith(prefix):
            return None
        head = module[len(prefix) :].split(".", 1)[0]
        return head if head in child_set and module != package else None

    succ: dict[str, set[str]] = {}
    for e in graph.get("edges", ()):
        a, b = child_of(e["importer"]), child_of(e["imported"])
        if a is not None and b is not None and a != b:
            succ.setdefault(a, set()).add(b)
            succ.setdefault(b, set())
    if not succ:
        return None
    indegree = {n: 0 for n in succ}
    for targets in succ.values():
        for t in targets:
            indegree[t] += 1
    order: list[str] = []
    queue = deque(sorted(n for n, d in indegree.items() if d == 0))
    while queue:
        n = queue.popleft()
        order.append(n)
        for t in sorted(succ[n]):
            indegree[t] -= 1
            if indegree[t] == 0:
                queue.append(t)
    if len(order) != len(succ):
        return None  # a cycle between siblings: no direction to infer
    level: dict[str, int] = {}
    for n in reversed(order):
        level[n] = 1 + max((level[t] for t in succ[n]), default=-1)
    depth = max(level.values()) + 1
    if depth < 3:
        return None
    layers = [
        sorted(_full(package, n) for n in succ if level[n] == lvl)
        for lvl in range(depth - 1, -1, -1)
    ]
    where = f"package {package}" if package else "the top-level packages"
    sentence = (
        f"layering inferred in {where} from the direction of imports between its "
        f"sub-packages, no layer names recognised ({_layers_text(layers)})"
    )
    return _detected_contract(f"inferred layers in {package or 'top level'}", layers, []), sentence


def _coverage(contract: Mapping[str, Any], nodes: Sequence[str]) -> int:
    """How many modules a detected contract's layers cover (to pick the style
    of the largest architecture when several packages were recognised)."""
    containers = contract.get("containers") or [""]
    prefixes = {
        f"{c}.{n}" if c else n for c in containers for names in contract["layers"] for n in names
    }
    count = 0
    for node in nodes:
        name = node
        while name and name not in prefixes:
            name = name.rpartition(".")[0]
        count += bool(name)
    return count


def detect_style(
    graph: dict[str, Any], modules: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The architecture style the package names (or import directions) suggest.

    Returns ``None`` when nothing is recognised, else ``{"style", "detail",
    "contracts"}`` with normalised layers contracts ready for
    :func:`check_architecture`. When several packages are recognised, every
    contract is kept and ``style`` is the one of the largest package.
    """
    nodes = sorted(
        set(graph.get("modules", ()))
        | set(modules)
        | {e[k] for e in graph.get("edges", ()) for k in ("importer", "imported")}
    )
    tree = _tree(nodes)
    roots = tree.get("", [])
    candidates: list[str] = []
    for root in roots:
        package = root
        kids = tree.get(package, [])
        if len(kids) == 1 and tree.get(_full(package, kids[0])):
            package = _full(package, kids[0])
        if tree.get(package):
            candidates.append(package)
    if len(roots) >= 2:
        candidates.append("")
    found: list[_Detection] = []
    detected_roots: set[str] = set()
    for package in candidates:
        children = tree.get(package, [])
        if not package:  # the top-level packages as siblings: those not seen above
            children = [c for c in children if c not in detected_roots]
        detection = _by_name(package, children, tree)
        if detection is None:
            inferred = _by_direction(package, children, graph)
            if inferred is not None:
                detection = ("layered", *inferred)
        if detection is not None:
            style, contract, sentence = detection
            size = _coverage(contract, nodes)
            found.append(_Detection(style, package, size, contract, sentence))
            detected_roots.add(package.split(".", 1)[0])
    if not found:
        return None
    best = min(found, key=lambda d: (-d.size, _PRIORITY[d.style], d.package))
    found.sort(key=lambda d: (d.package, d.contract["name"]))
    detail = "No architecture declared; detected " + "; ".join(d.sentence for d in found) + "."
    return {"style": best.style, "detail": detail, "contracts": [d.contract for d in found]}
