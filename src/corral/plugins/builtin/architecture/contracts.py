"""The declared architecture, read: corral's own ``[tool.corral.architecture]``
table in ``pyproject.toml`` or an import-linter configuration, validated
and decoded once into msgspec Structs (:class:`ArchitectureConfig`; they
travel between workflow steps as JSON and come back as the same Structs).
:func:`load_config` is the only part of the contract checking that
touches the file system; :mod:`.layers` checks what it returns, and
:mod:`.styles` builds the same contracts from package names when nothing is
declared.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from corral.core.files import read_capped
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError
from corral.plugins.builtin.architecture.projects import read_toml

__all__ = [
    "ArchitectureConfig",
    "Contract",
    "ForbiddenContract",
    "IndependenceContract",
    "LayersContract",
    "UncheckedContract",
    "layers_contract",
    "load_config",
    "parse_layer",
]

_Data = dict[str, Any]


class LayersContract(msgspec.Struct, tag_field="kind", tag="layers"):
    """Layers, top first: a lower layer imports no higher one, directly or
    through a chain; ``independent[i]``: layer ``i``'s siblings may not
    import each other either (``a | b``; ``a : b`` may)."""

    name: str
    layers: list[list[str]]
    independent: list[bool]
    optional: list[str] = msgspec.field(default_factory=list)
    containers: list[str] = msgspec.field(default_factory=list)
    ignore_imports: list[list[str]] = msgspec.field(default_factory=list)


class IndependenceContract(msgspec.Struct, tag_field="kind", tag="independence"):
    """No chain of imports between any two of ``modules``, either way."""

    name: str
    modules: list[str]
    ignore_imports: list[list[str]] = msgspec.field(default_factory=list)


class ForbiddenContract(msgspec.Struct, tag_field="kind", tag="forbidden"):
    """No chain from a ``source`` module to a ``forbidden`` one (direct
    imports only with ``allow_indirect``)."""

    name: str
    source: list[str]
    forbidden: list[str]
    allow_indirect: bool = False
    as_packages: bool = True
    ignore_imports: list[list[str]] = msgspec.field(default_factory=list)


class UncheckedContract(msgspec.Struct, tag_field="kind", tag="unchecked"):
    """An import-linter contract of a ``type`` corral does not check
    (``protected``, ``acyclic_siblings``, custom ones): listed, never kept
    nor broken."""

    name: str
    type: str


Contract = LayersContract | IndependenceContract | ForbiddenContract | UncheckedContract


class ArchitectureConfig(msgspec.Struct):
    """The declared architecture of one project: where it was read from
    (``source``: ``corral`` or ``importlinter``; ``file`` relative to the
    analysed folder) and its contracts."""

    source: str
    file: str
    contracts: list[Contract]


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


def _table(value: Any, reader: _Reader, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        reader.fail(f"expected a table, got {_type_name(value)}", key)
    return value


def _corral_contracts(table: dict[str, Any], reader: _Reader) -> list[Contract]:
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
    contracts: list[Contract] = []
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
            layers_contract(
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
                IndependenceContract(
                    name=f"independence of {', '.join(members)}",
                    modules=members,
                    ignore_imports=ignore,
                )
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
                ForbiddenContract(
                    name=name.strip(),
                    source=source,
                    forbidden=forbidden,
                    allow_indirect=reader.boolean(
                        entry.get("allow_indirect_imports", False),
                        f"{where}.allow_indirect_imports",
                    ),
                    ignore_imports=ignore + own_ignore,
                )
            )
    return contracts


def _layers_title(layers: list[list[str]], independent: list[bool]) -> str:
    return "layers " + " > ".join(
        (" | " if indep else " : ").join(names)
        for names, indep in zip(layers, independent, strict=True)
    )


def layers_contract(
    name: str,
    layers: list[list[str]],
    independent: list[bool],
    optional: list[str],
    containers: list[str],
    ignore: list[list[str]],
) -> LayersContract:
    return LayersContract(
        name=name,
        layers=layers,
        independent=independent,
        optional=optional,
        containers=containers,
        ignore_imports=ignore,
    )


def _importlinter_contract(
    options: Mapping[str, Any], key: str, default_name: str, reader: _Reader
) -> Contract:
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
        return layers_contract(name, layers, independent, optional, containers, ignore)
    if kind == "independence":
        return IndependenceContract(
            name=name,
            modules=reader.modules(required("modules"), f"{key}.modules", wildcards=True),
            ignore_imports=ignore,
        )
    if kind == "forbidden":
        return ForbiddenContract(
            name=name,
            source=reader.modules(
                required("source_modules"), f"{key}.source_modules", wildcards=True
            ),
            forbidden=reader.modules(
                required("forbidden_modules"), f"{key}.forbidden_modules", wildcards=True
            ),
            allow_indirect=reader.boolean(
                options.get("allow_indirect_imports", False), f"{key}.allow_indirect_imports"
            ),
            as_packages=reader.boolean(options.get("as_packages", True), f"{key}.as_packages"),
            ignore_imports=ignore,
        )
    return UncheckedContract(name=name, type=kind)


def _read_ini(path: Path, file: str) -> list[Contract] | None:
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
    contracts: list[Contract] = []
    for section in parser.sections():
        if not section.startswith("importlinter:"):
            continue
        contract_id = section.split(":")[-1]
        options: dict[str, Any] = {}
        for opt, value in parser.items(section):
            options[opt] = value.strip()
        contracts.append(_importlinter_contract(options, section, contract_id, reader))
    return contracts


def _toml_importlinter(session: dict[str, Any], reader: _Reader) -> list[Contract]:
    key = "tool.importlinter.contracts"
    entries = session.get("contracts", [])
    if not isinstance(entries, list):
        reader.fail(f"expected an array of tables, got {_type_name(entries)}", key)
    contracts: list[Contract] = []
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        entry = _table(entry, reader, where)
        default = entry.get("id") if isinstance(entry.get("id"), str) else f"contract {i + 1}"
        contracts.append(_importlinter_contract(entry, where, str(default), reader))
    return contracts


def load_config(
    project_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> ArchitectureConfig | None:
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
    ``pyproject.toml``). Returns ``None`` when nothing is declared, else an
    :class:`ArchitectureConfig` whose ``file`` is relative to ``root`` (to
    ``project_dir`` when ``root`` is not given). Raises
    :class:`~corral.errors.ArchitectureConfigError` naming the file and key
    for anything malformed.
    """
    base = Path(project_dir)
    anchor = Path(root) if root is not None else base
    pyproject = base / "pyproject.toml"
    data: dict[str, Any] | None = None
    if pyproject.is_file():
        file = _rel(pyproject, anchor)
        reader = _Reader(file)
        data = read_toml(pyproject, file)
        tool = data.get("tool")
        corral = tool.get("corral") if isinstance(tool, dict) else None
        if isinstance(corral, dict) and "architecture" in corral:
            table = _table(corral["architecture"], reader, _CORRAL_TABLE)
            contracts = _corral_contracts(table, _Reader(file, lists_only=True))
            if contracts:
                return ArchitectureConfig("corral", file, contracts)
    for name in ("setup.cfg", ".importlinter"):
        path = base / name
        if path.is_file():
            file = _rel(path, anchor)
            found = _read_ini(path, file)
            if found is not None:
                return ArchitectureConfig("importlinter", file, found)
    if data is not None:
        tool = data.get("tool")
        session = tool.get("importlinter") if isinstance(tool, dict) else None
        if session:
            file = _rel(pyproject, anchor)
            reader = _Reader(file)
            session = _table(session, reader, "tool.importlinter")
            return ArchitectureConfig("importlinter", file, _toml_importlinter(session, reader))
    return None
