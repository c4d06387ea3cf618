"""Architecture contracts (layers, independence, forbidden) and style detection."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tree import write_tree as write

from corral.errors import ArchitectureConfigError
from corral.plugins.builtin.architecture import contracts, styles
from corral.plugins.builtin.architecture.contracts import parse_layer
from corral.plugins.builtin.architecture.layers import check_architecture


def load_config(*args: Any, **kw: Any) -> Any:
    """The configuration as the JSON data the analysis steps hand on."""
    return msgspec.to_builtins(contracts.load_config(*args, **kw))


def detect_style(*args: Any, **kw: Any) -> Any:
    return msgspec.to_builtins(styles.detect_style(*args, **kw))

Edge = tuple[str, str, int]


def build(
    edges: list[Edge], extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A graph and module table from ``(importer, imported, line)`` triples;
    every dotted prefix of a name is a module too (packages)."""
    names: set[str] = set(extra)
    for a, b, _ in edges:
        names.update((a, b))
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    packages = {n.rpartition(".")[0] for n in names if "." in n}
    modules = {
        n: {
            "path": n.replace(".", "/") + ("/__init__.py" if n in packages else ".py"),
            "is_package": n in packages,
        }
        for n in names
    }
    graph = {
        "modules": sorted(names),
        "edges": [{"importer": a, "imported": b, "lines": [line]} for a, b, line in edges],
    }
    return graph, modules


def layers(
    *entries: str,
    containers: list[str] | None = None,
    ignore: list[list[str]] | None = None,
) -> dict[str, Any]:
    names = [parse_layer(e) for e in entries]
    return {
        "name": "layers",
        "kind": "layers",
        "layers": [n for n, _, _ in names],
        "independent": [i for _, i, _ in names],
        "optional": sorted(o for _, _, opt in names for o in opt),
        "containers": containers or [],
        "ignore_imports": ignore or [],
    }


def config(*contracts: dict[str, Any]) -> dict[str, Any]:
    return {"source": "corral", "file": "pyproject.toml", "contracts": list(contracts)}


def brief(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(importer, imported, line, chain, direct, importer_layer, imported_layer) of
    every listed violation, contracts in order."""
    return [
        (
            v["importer"],
            v["imported"],
            v["line"],
            v["chain"],
            v["direct"],
            v["importer_layer"],
            v["imported_layer"],
        )
        for c in result["contracts"]
        for v in c["violations"]
    ]


# --------------------------------------------------------------------------
# parse_layer
# --------------------------------------------------------------------------


def test_parse_layer_separators_and_optional() -> None:
    assert parse_layer("api") == (["api"], True, [])
    assert parse_layer(" services | jobs ") == (["services", "jobs"], True, [])
    assert parse_layer("a : (b)") == (["a", "b"], False, ["b"])
    with pytest.raises(ValueError, match="mixes"):
        parse_layer("a | b : c")
    with pytest.raises(ValueError, match="empty layer"):
        parse_layer("a | ")


# --------------------------------------------------------------------------
# load_config
# --------------------------------------------------------------------------


CORRAL_TOML = """\
    [project]
    name = "x"

    [tool.corral.architecture]
    containers = ["myapp"]
    layers = ["api", "services | jobs", "domain : model"]
    independent = [["myapp.plugins.x", "myapp.plugins.y"]]
    ignore_imports = ["myapp.*.legacy -> myapp.api"]
    exclude = ["build/*"]
    exclude_tests = true
    fail_on = "violations"

    [[tool.corral.architecture.forbidden]]
    name = "domain stays pure"
    source = ["myapp.domain"]
    forbidden = ["myapp.api", "requests"]

    [[tool.corral.architecture.forbidden]]
    source = ["myapp.jobs"]
    forbidden = ["myapp.api"]
    allow_indirect_imports = true
    """


def test_load_corral_table(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": CORRAL_TOML})
    ignore = [["myapp.*.legacy", "myapp.api"]]
    assert load_config(tmp_path) == {
        "source": "corral",
        "file": "pyproject.toml",
        "contracts": [
            {
                "name": "layers api > services | jobs > domain : model",
                "kind": "layers",
                "layers": [["api"], ["services", "jobs"], ["domain", "model"]],
                "independent": [True, True, False],
                "optional": [],
                "containers": ["myapp"],
                "ignore_imports": ignore,
            },
            {
                "name": "independence of myapp.plugins.x, myapp.plugins.y",
                "kind": "independence",
                "modules": ["myapp.plugins.x", "myapp.plugins.y"],
                "ignore_imports": ignore,
            },
            {
                "name": "domain stays pure",
                "kind": "forbidden",
                "source": ["myapp.domain"],
                "forbidden": ["myapp.api", "requests"],
                "allow_indirect": False,
                "as_packages": True,
                "ignore_imports": ignore,
            },
            {
                "name": "myapp.jobs must not import myapp.api",
                "kind": "forbidden",
                "source": ["myapp.jobs"],
                "forbidden": ["myapp.api"],
                "allow_indirect": True,
                "as_packages": True,
                "ignore_imports": ignore,
            },
        ],
    }


def test_load_config_file_relative_to_root(tmp_path: Path) -> None:
    write(tmp_path, {"sub/pyproject.toml": CORRAL_TOML})
    found = load_config(tmp_path / "sub", root=tmp_path)
    assert found is not None
    assert found["file"] == "sub/pyproject.toml"


def test_nothing_declared_is_none(tmp_path: Path) -> None:
    assert load_config(tmp_path) is None
    write(
        tmp_path,
        {
            "pyproject.toml": '[tool.corral.architecture]\nexclude = ["a"]\nfail_on = "x"\n',
            "setup.cfg": "[metadata]\nname = x\n[flake8]\nmax-line-length = 100\n",
        },
    )
    assert load_config(tmp_path) is None


def test_unrelated_broken_setup_cfg_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "this is = not\n[an ini\n"})
    assert load_config(tmp_path) is None


IMPORTLINTER_INI = """\
    [importlinter]
    root_package = mypackage
    include_external_packages = True

    [importlinter:contract:layered]
    name = My layers contract
    type = layers
    layers =
        high
        (medium)
        blue | green
        low
    containers =
        mypackage.foo
        mypackage.bar
    exhaustive = true
    exhaustive_ignores =
        utils
    ignore_imports =
        mypackage.foo.low -> mypackage.foo.high
        mypackage.*.low.x -> mypackage.utils

    [importlinter:contract:indep]
    name = Plugins are independent
    type = independence
    modules =
        mypackage.plugins.a
        mypackage.plugins.b

    [importlinter:contract:forbid]
    type = forbidden
    source_modules =
        mypackage.one
    forbidden_modules =
        mypackage.two
        django
    allow_indirect_imports = True

    [importlinter:contract:prot]
    name = Protected
    type = protected
    protected_modules = mypackage.core
    """

IMPORTLINTER_CONTRACTS = [
    {
        "name": "My layers contract",
        "kind": "layers",
        "layers": [["high"], ["medium"], ["blue", "green"], ["low"]],
        "independent": [True, True, True, True],
        "optional": ["medium"],
        "containers": ["mypackage.foo", "mypackage.bar"],
        "ignore_imports": [
            ["mypackage.foo.low", "mypackage.foo.high"],
            ["mypackage.*.low.x", "mypackage.utils"],
        ],
    },
    {
        "name": "Plugins are independent",
        "kind": "independence",
        "modules": ["mypackage.plugins.a", "mypackage.plugins.b"],
        "ignore_imports": [],
    },
    {
        "name": "forbid",
        "kind": "forbidden",
        "source": ["mypackage.one"],
        "forbidden": ["mypackage.two", "django"],
        "allow_indirect": True,
        "as_packages": True,
        "ignore_imports": [],
    },
    {"name": "Protected", "kind": "unchecked", "type": "protected"},
]


@pytest.mark.parametrize("filename", [".importlinter", "setup.cfg"])
def test_load_importlinter_ini(tmp_path: Path, filename: str) -> None:
    write(tmp_path, {filename: IMPORTLINTER_INI})
    assert load_config(tmp_path) == {
        "source": "importlinter",
        "file": filename,
        "contracts": IMPORTLINTER_CONTRACTS,
    }


def test_load_importlinter_toml(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": """\
            [tool.importlinter]
            root_packages = ["high", "low"]

            [[tool.importlinter.contracts]]
            id = "one"
            type = "layers"
            layers = ["high", "mid : side", "low"]
            ignore_imports = ["low -> high"]

            [[tool.importlinter.contracts]]
            name = "No requests in low"
            type = "forbidden"
            source_modules = ["low"]
            forbidden_modules = ["requests"]
            as_packages = false
            """
        },
    )
    assert load_config(tmp_path) == {
        "source": "importlinter",
        "file": "pyproject.toml",
        "contracts": [
            {
                "name": "one",
                "kind": "layers",
                "layers": [["high"], ["mid", "side"], ["low"]],
                "independent": [True, False, True],
                "optional": [],
                "containers": [],
                "ignore_imports": [["low", "high"]],
            },
            {
                "name": "No requests in low",
                "kind": "forbidden",
                "source": ["low"],
                "forbidden": ["requests"],
                "allow_indirect": False,
                "as_packages": False,
                "ignore_imports": [],
            },
        ],
    }


def test_corral_table_wins_over_importlinter(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": CORRAL_TOML, ".importlinter": IMPORTLINTER_INI})
    found = load_config(tmp_path)
    assert found is not None
    assert (found["source"], found["file"]) == ("corral", "pyproject.toml")


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('layers = ["api", "services | "]', "tool.corral.architecture.layers[1]", "empty layer"),
        ('layers = ["api", ""]', "tool.corral.architecture.layers[1]", "empty layer"),
        ('layers = "api"', "tool.corral.architecture.layers", "expected a list"),
        ('layers = ["a | b : c"]', "tool.corral.architecture.layers[0]", "mixes"),
        ('layers = ["a", "b", "a"]', "tool.corral.architecture.layers[2]", "listed twice"),
        ('layers = ["a", "b-c"]', "tool.corral.architecture.layers[1]", "not a valid"),
        ("layers = 3", "tool.corral.architecture.layers", "expected a list"),
        ("layers = []", "tool.corral.architecture.layers", "at least one layer"),
        ('layerz = ["a"]', "tool.corral.architecture.layerz", "unknown key 'layerz'"),
        ('containers = ["x"]', "tool.corral.architecture.containers", "needs 'layers'"),
        ('independent = [["a.b"]]', "tool.corral.architecture.independent[0]", "at least 2"),
        ('independent = ["a", "b"]', "tool.corral.architecture.independent[0]", "expected a list"),
        (
            '[[tool.corral.architecture.forbidden]]\nsource = ["a"]',
            "tool.corral.architecture.forbidden[0].forbidden",
            "missing 'forbidden'",
        ),
        (
            '[[tool.corral.architecture.forbidden]]\nsource = ["a"]\nforbidden = ["b"]\nx = 1',
            "tool.corral.architecture.forbidden[0].x",
            "unknown key 'x'",
        ),
        (
            '[[tool.corral.architecture.forbidden]]\nsource = ["a"]\nforbidden = ["b"]\n'
            "allow_indirect_imports = 1",
            "tool.corral.architecture.forbidden[0].allow_indirect_imports",
            "true or false",
        ),
        ('ignore_imports = ["a.b c.d"]', "tool.corral.architecture.ignore_imports[0]", "->"),
    ],
)
def test_corral_table_errors_name_file_and_key(
    tmp_path: Path, table: str, key: str, message: str
) -> None:
    write(tmp_path, {"app/pyproject.toml": "[tool.corral.architecture]\n" + table + "\n"})
    with pytest.raises(ArchitectureConfigError) as info:
        load_config(tmp_path / "app", root=tmp_path)
    assert info.value.file == "app/pyproject.toml"
    assert info.value.key == key
    assert message in info.value.message
    assert str(info.value).startswith(f"app/pyproject.toml: {key}: ")


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.corral.architecture]\nlayers = ["a",\nfoo bar\n'})
    with pytest.raises(ArchitectureConfigError) as info:
        load_config(tmp_path)
    assert info.value.file == "pyproject.toml"
    assert info.value.key is None
    assert info.value.message.startswith("invalid TOML at line 3")


def test_malformed_importlinter_ini(tmp_path: Path) -> None:
    write(tmp_path, {".importlinter": "[importlinter]\nroot_package = x\nnot an option line\n"})
    with pytest.raises(ArchitectureConfigError) as info:
        load_config(tmp_path)
    assert info.value.file == ".importlinter"
    assert info.value.message == "invalid INI at line 3: cannot parse 'not an option line'"


@pytest.mark.parametrize(
    ("contract", "key", "message"),
    [
        ("name = x\nlayers = a", "importlinter:contract:c.type", "missing contract 'type'"),
        ("type = layers", "importlinter:contract:c.layers", "missing 'layers'"),
        ("type = layers\nlayers =\n  a\n  b | : c", "importlinter:contract:c.layers[1]", "mixes"),
        ("type = independence", "importlinter:contract:c.modules", "missing 'modules'"),
        (
            "type = forbidden\nsource_modules = a\nforbidden_modules = b\n"
            "allow_indirect_imports = maybe",
            "importlinter:contract:c.allow_indirect_imports",
            "true or false",
        ),
        (
            "type = independence\nmodules =\n  a\n  b\nignore_imports = a -> b.c-d",
            "importlinter:contract:c.ignore_imports[0]",
            "not a valid",
        ),
    ],
)
def test_importlinter_errors_name_file_and_key(
    tmp_path: Path, contract: str, key: str, message: str
) -> None:
    write(
        tmp_path,
        {"setup.cfg": "[importlinter]\nroot_package = a\n\n[importlinter:contract:c]\n" + contract},
    )
    with pytest.raises(ArchitectureConfigError) as info:
        load_config(tmp_path)
    assert (info.value.file, info.value.key) == ("setup.cfg", key)
    assert message in info.value.message


# --------------------------------------------------------------------------
# check_architecture: declared contracts
# --------------------------------------------------------------------------


def test_direct_upward_import() -> None:
    graph, modules = build(
        [
            ("app.api.views", "app.services.orders", 3),
            ("app.services.orders", "app.domain.order", 4),
            ("app.domain.order", "app.api.views", 12),
        ]
    )
    result = check_architecture(
        config(layers("app.api", "app.services", "app.domain")), graph, modules
    )
    assert brief(result) == [
        (
            "app.domain.order",
            "app.api.views",
            12,
            ["app.domain.order", "app.api.views"],
            True,
            "app.domain",
            "app.api",
        )
    ]
    contract = result["contracts"][0]
    assert contract["violations"][0]["path"] == "app/domain/order.py"
    assert (contract["kept"], contract["violation_count"], contract["truncated"]) == (
        False,
        1,
        False,
    )
    assert contract["layers"] == [["app.api"], ["app.services"], ["app.domain"]]
    assert (result["source"], result["style"], result["config_file"]) == (
        "corral",
        "declared",
        "pyproject.toml",
    )
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (
        1,
        3,
        round(1 - 1 / 3, 4),
    )


def test_kept_contract_counts_checked_edges() -> None:
    graph, modules = build(
        [("app.api", "app.services", 1), ("app.services", "app.domain", 2), ("app.x", "app.y", 3)]
    )
    result = check_architecture(
        config(layers("app.api", "app.services", "app.domain")), graph, modules
    )
    assert result["contracts"][0]["kept"] is True
    assert result["contracts"][0]["violations"] == []
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (0, 2, 1.0)


def test_indirect_chain_through_a_third_module_shortest_first() -> None:
    graph, modules = build(
        [
            ("app.domain.model", "app.utils.a", 7),
            ("app.domain.model", "app.utils.long1", 2),
            ("app.utils.long1", "app.utils.long2", 1),
            ("app.utils.long2", "app.api.views", 1),
            ("app.utils.a", "app.api.views", 9),
        ]
    )
    result = check_architecture(config(layers("app.api", "app.domain")), graph, modules)
    assert brief(result) == [
        (
            "app.domain.model",
            "app.api.views",
            7,
            ["app.domain.model", "app.utils.a", "app.api.views"],
            False,
            "app.domain",
            "app.api",
        )
    ]
    # No direct edge crosses the layers, so nothing is checked directly.
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (1, 0, None)


def test_chain_through_another_layer_is_reported_where_it_enters() -> None:
    # domain -> glue -> services -> api: domain breaks the contract where it
    # reaches services; the rest of the chain is services' own violation, not
    # a second chain from domain to api.
    graph, modules = build(
        [
            ("app.domain", "app.glue", 1),
            ("app.glue", "app.services", 5),
            ("app.services", "app.api", 2),
        ]
    )
    result = check_architecture(
        config(layers("app.api", "app.services", "app.domain")), graph, modules
    )
    assert brief(result) == [
        (
            "app.services",
            "app.api",
            2,
            ["app.services", "app.api"],
            True,
            "app.services",
            "app.api",
        ),
        (
            "app.domain",
            "app.services",
            1,
            ["app.domain", "app.glue", "app.services"],
            False,
            "app.domain",
            "app.services",
        ),
    ]


def test_independent_siblings_and_colon_siblings() -> None:
    edges: list[Edge] = [
        ("app.services.a", "app.jobs.b", 5),
        ("app.jobs.c", "app.tools", 6),
        ("app.tools", "app.services", 2),
    ]
    graph, modules = build(edges, extra=("app.api", "app.domain"))
    independent = check_architecture(
        config(layers("app.api", "app.services | app.jobs", "app.domain")), graph, modules
    )
    assert brief(independent) == [
        (
            "app.services.a",
            "app.jobs.b",
            5,
            ["app.services.a", "app.jobs.b"],
            True,
            "app.services",
            "app.jobs",
        ),
        (
            "app.jobs.c",
            "app.services",
            6,
            ["app.jobs.c", "app.tools", "app.services"],
            False,
            "app.jobs",
            "app.services",
        ),
    ]
    allowed = check_architecture(
        config(layers("app.api", "app.services : app.jobs", "app.domain")), graph, modules
    )
    assert allowed["contracts"][0]["kept"] is True
    assert (allowed["violations"], allowed["checked_edges"], allowed["problems"]) == (0, 1, [])


def test_containers_check_each_container_alone() -> None:
    graph, modules = build(
        [
            ("pkg.foo.low.x", "pkg.foo.high.y", 3),  # breaks foo's layering
            ("pkg.foo.low.x", "pkg.bar.high", 4),  # other container: allowed
            ("pkg.bar.low", "pkg.foo.high", 8),  # allowed as well
        ]
    )
    result = check_architecture(
        config(layers("high", "low", containers=["pkg.foo", "pkg.bar"])), graph, modules
    )
    assert brief(result) == [
        (
            "pkg.foo.low.x",
            "pkg.foo.high.y",
            3,
            ["pkg.foo.low.x", "pkg.foo.high.y"],
            True,
            "pkg.foo.low",
            "pkg.foo.high",
        ),
    ]
    assert result["contracts"][0]["layers"] == [["high"], ["low"]]
    assert result["checked_edges"] == 1


def test_container_wildcard_and_missing_layer_detail() -> None:
    graph, modules = build([("pkg.a.low", "pkg.a.high", 1), ("pkg.b.low", "pkg.b.high", 2)])
    result = check_architecture(
        config(layers("high", "(mid)", "low", "gone", containers=["pkg.*"])), graph, modules
    )
    assert [(v["importer"], v["imported"]) for v in result["contracts"][0]["violations"]] == [
        ("pkg.a.low", "pkg.a.high"),
        ("pkg.b.low", "pkg.b.high"),
    ]
    contract = result["contracts"][0]
    assert contract["detail"] == (
        "4 layers, top first in containers pkg.*; no module matches: pkg.a.gone, pkg.b.gone; "
        "broken: 2 direct and 0 indirect violations"
    )
    assert (contract["kept"], contract["violation_count"]) == (False, 2)
    assert result["problems"] == [
        "layers: no module matches: pkg.a.gone, pkg.b.gone; the other members were checked"
    ]


def test_ignore_imports_with_wildcard_removes_edges_before_checking() -> None:
    edges: list[Edge] = [
        ("app.domain.a", "app.api.x", 1),
        ("app.domain.b", "app.api.y", 2),
        ("app.domain.c", "app.glue", 3),
        ("app.glue", "app.api.x", 4),
    ]
    graph, modules = build(edges)
    result = check_architecture(
        config(
            layers(
                "app.api",
                "app.domain",
                ignore=[["app.domain.*", "app.api.x"], ["app.glue", "app.api.*"]],
            )
        ),
        graph,
        modules,
    )
    assert brief(result) == [
        (
            "app.domain.b",
            "app.api.y",
            2,
            ["app.domain.b", "app.api.y"],
            True,
            "app.domain",
            "app.api",
        )
    ]
    # The ignored direct edge is not checked either.
    assert result["checked_edges"] == 1


def forbidden(
    source: list[str], targets: list[str], *, allow_indirect: bool = False
) -> dict[str, Any]:
    return {
        "name": "no",
        "kind": "forbidden",
        "source": source,
        "forbidden": targets,
        "allow_indirect": allow_indirect,
        "as_packages": True,
        "ignore_imports": [],
    }


FORBIDDEN_EDGES: list[Edge] = [
    ("app.domain.model", "app.api.routes", 10),
    ("app.domain.rules", "app.helpers", 3),
    ("app.helpers", "app.api", 1),
    ("app.helpers", "app.http", 2),
]
FORBIDDEN_EXTERNAL = [
    {"importer": "app.domain.model", "imported": "requests", "lines": [2, 5]},
    {"importer": "app.api.routes", "imported": "requests", "lines": [1]},
    {"importer": "app.http", "imported": "requests", "lines": [4]},
]


def test_forbidden_internal_and_external() -> None:
    graph, modules = build(FORBIDDEN_EDGES)
    result = check_architecture(
        config(forbidden(["app.domain"], ["app.api", "requests"])),
        graph,
        modules,
        FORBIDDEN_EXTERNAL,
    )
    assert brief(result) == [
        (
            "app.domain.model",
            "app.api.routes",
            10,
            ["app.domain.model", "app.api.routes"],
            True,
            "app.domain",
            "app.api",
        ),
        (
            "app.domain.model",
            "requests",
            2,
            ["app.domain.model", "requests"],
            True,
            "app.domain",
            "requests",
        ),
        (
            "app.domain.rules",
            "app.api",
            3,
            ["app.domain.rules", "app.helpers", "app.api"],
            False,
            "app.domain",
            "app.api",
        ),
        (
            "app.domain.rules",
            "requests",
            3,
            ["app.domain.rules", "app.helpers", "app.http", "requests"],
            False,
            "app.domain",
            "requests",
        ),
    ]
    contract = result["contracts"][0]
    assert (contract["kind"], contract["modules"], contract["layers"]) == (
        "forbidden",
        ["app.domain"],
        None,
    )
    # Checked: the internal edge domain.model -> api.routes and the external
    # import domain.model -> requests, both violating. api.routes -> requests
    # and http -> requests are not from a source, so they are not checked.
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (4, 2, 0.0)


def test_forbidden_allow_indirect_imports_keeps_direct_only() -> None:
    graph, modules = build(FORBIDDEN_EDGES)
    result = check_architecture(
        config(forbidden(["app.domain"], ["app.api", "requests"], allow_indirect=True)),
        graph,
        modules,
        FORBIDDEN_EXTERNAL,
    )
    assert [
        (v["importer"], v["imported"], v["direct"]) for v in result["contracts"][0]["violations"]
    ] == [
        ("app.domain.model", "app.api.routes", True),
        ("app.domain.model", "requests", True),
    ]
    assert result["violations"] == 2


def test_forbidden_skips_overlapping_pairs() -> None:
    graph, modules = build([("app.core", "app.core.api", 1), ("app.x", "app.core.api", 2)])
    result = check_architecture(config(forbidden(["app"], ["app.core.api"])), graph, modules)
    assert result["contracts"][0]["kept"] is True


def test_independence_both_directions_direct_and_indirect() -> None:
    graph, modules = build(
        [
            ("app.plugins.a.run", "app.plugins.b", 4),
            ("app.plugins.b.util", "app.common", 1),
            ("app.common", "app.plugins.c.api", 6),
            ("app.plugins.c", "app.other", 1),
        ]
    )
    contract = {
        "name": "plugins",
        "kind": "independence",
        "modules": ["app.plugins.*"],
        "ignore_imports": [],
    }
    result = check_architecture(config(contract), graph, modules)
    assert brief(result) == [
        (
            "app.plugins.a.run",
            "app.plugins.b",
            4,
            ["app.plugins.a.run", "app.plugins.b"],
            True,
            "app.plugins.a",
            "app.plugins.b",
        ),
        (
            "app.plugins.b.util",
            "app.plugins.c.api",
            1,
            ["app.plugins.b.util", "app.common", "app.plugins.c.api"],
            False,
            "app.plugins.b",
            "app.plugins.c",
        ),
    ]
    # the wildcard is resolved against the graph's modules
    assert result["contracts"][0]["modules"] == ["app.plugins.a", "app.plugins.b", "app.plugins.c"]


def test_unknown_contract_type_is_reported_unchecked() -> None:
    graph, modules = build([("a.b", "a.c", 1)])
    result = check_architecture(
        {
            "source": "importlinter",
            "file": ".importlinter",
            "contracts": [{"name": "Protected", "kind": "unchecked", "type": "protected"}],
        },
        graph,
        modules,
    )
    assert result["contracts"] == [
        {
            "name": "Protected",
            "kind": "protected",
            "layers": None,
            "modules": None,
            "kept": None,
            "violation_count": 0,
            "truncated": False,
            "violations": [],
            "detail": "contract type 'protected' is not checked by corral",
        }
    ]
    assert (result["source"], result["config_file"], result["conformance"]) == (
        "importlinter",
        ".importlinter",
        None,
    )
    assert (result["violations"], result["checked_edges"], result["problems"]) == (0, 0, [])
    assert result["detail"] == (
        "1 contract declared in .importlinter (import-linter configuration), 0 broken, "
        "1 not checked"
    )


def test_forbidden_external_imports_count_as_checked_edges() -> None:
    graph, modules = build(
        [("app.api", "app.domain", 1), ("app.domain.c", "app.util", 2)],
        extra=("app.domain.a", "app.domain.b"),
    )
    external = [
        {"importer": "app.domain.a", "imported": "os", "lines": [3]},  # checked, violating
        {"importer": "app.domain.b", "imported": "json", "lines": [1]},  # json not forbidden
        {"importer": "app.api", "imported": "os", "lines": [4]},  # not a source
        {"importer": "app.util", "imported": "os", "lines": [5]},  # not a source either
    ]
    only_os = check_architecture(
        config(forbidden(["app.domain"], ["os"])), graph, modules, external
    )
    contract = only_os["contracts"][0]
    assert (contract["kept"], contract["violation_count"]) == (False, 2)
    assert [(v["chain"], v["direct"]) for v in contract["violations"]] == [
        (["app.domain.a", "os"], True),
        (["app.domain.c", "app.util", "os"], False),
    ]
    # The direct import of os is checked and violating; the chain is indirect.
    assert (only_os["violations"], only_os["checked_edges"], only_os["conformance"]) == (
        2,
        1,
        0.0,
    )
    both = check_architecture(
        config(layers("app.api", "app.domain"), forbidden(["app.domain"], ["os"])),
        graph,
        modules,
        external,
    )
    # app.api -> app.domain (kept) and app.domain.a -> os (violating)
    assert (both["violations"], both["checked_edges"], both["conformance"]) == (2, 2, 0.5)
    ignoring = forbidden(["app.domain"], ["os"], allow_indirect=True)
    ignoring["ignore_imports"] = [["app.domain.*", "os"]]
    ignored = check_architecture(config(ignoring), graph, modules, external)
    assert ignored["contracts"][0]["kept"] is True
    assert (ignored["violations"], ignored["checked_edges"], ignored["conformance"]) == (
        0,
        0,
        None,
    )


def test_unchecked_contract_types_are_neither_kept_nor_broken(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".importlinter": """\
                [importlinter]
                root_package = app

                [importlinter:contract:siblings]
                name = Siblings
                type = acyclic_siblings
                ancestors = app

                [importlinter:contract:layers]
                name = Layers
                type = layers
                layers =
                    app.high
                    app.low
                """
        },
    )
    loaded = load_config(tmp_path)
    assert loaded is not None
    graph, modules = build([("app.low", "app.high", 7)])
    result = check_architecture(loaded, graph, modules)
    assert [(c["name"], c["kept"], c["violation_count"]) for c in result["contracts"]] == [
        ("Siblings", None, 0),
        ("Layers", False, 1),
    ]
    assert result["contracts"][0]["detail"] == (
        "contract type 'acyclic_siblings' is not checked by corral"
    )
    assert result["detail"] == (
        "2 contracts declared in .importlinter (import-linter configuration), 1 broken, "
        "1 not checked"
    )
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (1, 1, 0.0)
    assert result["problems"] == []


def _unmatched(contract: dict[str, Any]) -> tuple[Any, ...]:
    return (
        contract["kept"],
        contract["violation_count"],
        contract["truncated"],
        contract["violations"],
        contract["detail"],
    )


def test_contract_matching_no_module_is_broken_and_a_problem() -> None:
    # Without the guard, "high"/"low" at the top level would be checked (and
    # broken by low -> high) when the containers match nothing.
    graph, modules = build([("low", "high", 1), ("app.x", "app.y", 2)])
    declared = [
        layers("high", "low", containers=["nope"]),
        layers("high", "low", containers=["nope.*"]),
        layers("app.api", "(app.web)"),
        {
            "name": "independence",
            "kind": "independence",
            "modules": ["app.plugins.*", "app.gone"],
            "ignore_imports": [],
        },
        forbidden(["app.nope"], ["os", "app.x"]),
    ]
    for i, contract in enumerate(declared):
        contract["name"] = f"c{i}"
    external = [{"importer": "app.x", "imported": "os", "lines": [1]}]
    result = check_architecture(config(*declared), graph, modules, external)
    assert [_unmatched(c) for c in result["contracts"]] == [
        (False, 0, False, [], "2 layers, top first in containers nope; no module matches: nope"),
        (
            False,
            0,
            False,
            [],
            "2 layers, top first in containers nope.*; no module matches: nope.*",
        ),
        (False, 0, False, [], "2 layers, top first; no module matches: app.api, app.web"),
        (
            False,
            0,
            False,
            [],
            "app.gone: none may import another; no module matches: app.plugins.*, app.gone",
        ),
        (
            False,
            0,
            False,
            [],
            "app.nope must not import app.x, os; no module matches: app.nope",
        ),
    ]
    assert [c["modules"] for c in result["contracts"]] == [
        None,
        None,
        None,
        ["app.gone"],
        ["app.nope"],
    ]
    assert result["problems"] == [
        "c0: no module matches: nope; nothing was checked",
        "c1: no module matches: nope.*; nothing was checked",
        "c2: no module matches: app.api, app.web; nothing was checked",
        "c3: no module matches: app.plugins.*, app.gone; nothing was checked",
        "c4: no module matches: app.nope; nothing was checked",
    ]
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (
        0,
        0,
        None,
    )
    assert result["detail"].endswith(", 5 broken")


def test_missing_required_member_breaks_the_contract_like_import_linter() -> None:
    graph, modules = build(
        [("app.api", "app.domain", 1), ("app.a", "app.x", 2), ("app.src", "app.x", 3)]
    )
    declared = [
        layers("app.api", "app.gone", "(app.opt)", "app.domain"),
        layers("app.api", "(app.opt)", "app.domain"),
        {
            "name": "independence",
            "kind": "independence",
            "modules": ["app.a", "app.gone"],
            "ignore_imports": [],
        },
        forbidden(["app.src", "app.gone"], ["app.api"]),
        forbidden(["app.src"], ["app.gone", "requests"]),  # absent targets are fine
    ]
    for i, contract in enumerate(declared):
        contract["name"] = f"c{i}"
    result = check_architecture(config(*declared), graph, modules)
    assert [(c["kept"], c["violation_count"], c["detail"]) for c in result["contracts"]] == [
        (False, 0, "4 layers, top first; no module matches: app.gone; broken"),
        (True, 0, "3 layers, top first; kept"),
        (
            False,
            0,
            "app.a, app.gone: none may import another; no module matches: app.gone; broken",
        ),
        (
            False,
            0,
            "app.gone, app.src must not import app.api; no module matches: app.gone; broken",
        ),
        (True, 0, "app.src must not import app.gone, requests; kept"),
    ]
    assert result["problems"] == [
        "c0: no module matches: app.gone; the other members were checked",
        "c2: no module matches: app.gone; the other members were checked",
        "c3: no module matches: app.gone; the other members were checked",
    ]
    # The present members were checked: app.api -> app.domain, twice over.
    assert (result["violations"], result["checked_edges"], result["conformance"]) == (
        0,
        1,
        1.0,
    )


def test_listed_violations_are_capped_counts_stay_exact() -> None:
    edges: list[Edge] = [(f"app.low.m{i:02d}", "app.high", i + 1) for i in range(30)]
    edges += [(f"app.low.n{i:02d}", f"app.mid{i:02d}", 1) for i in range(10)]
    edges += [(f"app.mid{i:02d}", "app.high", 1) for i in range(10)]
    graph, modules = build(edges)
    result = check_architecture(
        config(layers("app.high", "app.low")), graph, modules, max_violations=5
    )
    contract = result["contracts"][0]
    assert (contract["violation_count"], contract["truncated"]) == (40, True)
    assert [v["importer"] for v in contract["violations"]] == [
        f"app.low.m{i:02d}" for i in range(5)
    ]
    assert result["violations"] == 40
    assert result["conformance"] == 0.0
    full = check_architecture(config(layers("app.high", "app.low")), graph, modules)
    assert full["contracts"][0]["truncated"] is False
    assert sum(not v["direct"] for v in full["contracts"][0]["violations"]) == 10


def test_output_is_deterministic_whatever_the_input_order() -> None:
    edges: list[Edge] = [
        ("app.domain.a", "app.api.z", 1),
        ("app.domain.b", "app.x", 2),
        ("app.domain.b", "app.y", 3),
        ("app.x", "app.api.q", 1),
        ("app.y", "app.api.p", 1),
        ("app.services.s", "app.api.p", 4),
    ]
    cfg = config(layers("app.api", "app.services", "app.domain"))
    graph, modules = build(edges)
    expected = check_architecture(cfg, graph, modules)
    # the tie between the two 2-hop chains goes to the smaller first hop
    assert brief(expected)[-1][3] == ["app.domain.b", "app.x", "app.api.q"]
    rng = random.Random(3)
    for _ in range(5):
        shuffled = edges[:]
        rng.shuffle(shuffled)
        graph, modules = build(shuffled)
        graph["modules"] = list(reversed(graph["modules"]))
        assert check_architecture(cfg, graph, modules) == expected


def test_loaded_config_checks_end_to_end(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".importlinter": """\
            [importlinter]
            root_package = shop

            [importlinter:contract:1]
            name = Shop layers
            type = layers
            layers =
                web
                orders | billing
                core
            containers = shop
            """
        },
    )
    cfg = load_config(tmp_path)
    graph, modules = build(
        [("shop.core.money", "shop.web.app", 2), ("shop.billing", "shop.orders.cart", 9)]
    )
    result = check_architecture(cfg, graph, modules)
    assert [
        (v["importer"], v["imported"], v["line"]) for v in result["contracts"][0]["violations"]
    ] == [("shop.billing", "shop.orders.cart", 9), ("shop.core.money", "shop.web.app", 2)]
    assert result["detail"] == (
        "1 contract declared in .importlinter (import-linter configuration), 1 broken"
    )


# --------------------------------------------------------------------------
# Style detection
# --------------------------------------------------------------------------


def test_detect_ddd() -> None:
    graph, modules = build(
        [
            ("shop.interfaces.http", "shop.application.checkout", 3),
            ("shop.application.checkout", "shop.domain.cart", 4),
            ("shop.infrastructure.db", "shop.domain.cart", 5),
            ("shop.domain.cart", "shop.infrastructure.db", 8),  # the violation
            ("shop.interfaces.http", "shop.infrastructure.db", 2),  # allowed (same layer, ':')
        ]
    )
    result = check_architecture(None, graph, modules)
    assert (result["source"], result["style"], result["config_file"]) == (
        "detected",
        "ddd",
        None,
    )
    assert result["contracts"][0]["layers"] == [
        ["shop.infrastructure", "shop.interfaces"],
        ["shop.application"],
        ["shop.domain"],
    ]
    assert brief(result) == [
        (
            "shop.domain.cart",
            "shop.infrastructure.db",
            8,
            ["shop.domain.cart", "shop.infrastructure.db"],
            True,
            "shop.domain",
            "shop.infrastructure",
        ),
    ]
    assert "DDD layering in package shop" in result["detail"]
    assert "application, domain, infrastructure, interfaces" in result["detail"]
    assert (result["checked_edges"], result["conformance"]) == (5, 0.8)


def test_detect_mvc_inside_a_wrapper_package() -> None:
    graph, modules = build(
        [
            ("wrap.site.controllers.home", "wrap.site.views.page", 1),
            ("wrap.site.views.page", "wrap.site.models.user", 2),
            ("wrap.site.models.user", "wrap.site.controllers.home", 3),
        ]
    )
    result = check_architecture(None, graph, modules)
    assert result["style"] == "mvc"
    assert result["contracts"][0]["layers"] == [
        ["wrap.site.controllers"],
        ["wrap.site.views"],
        ["wrap.site.models"],
    ]
    assert [(v["importer"], v["imported"]) for v in result["contracts"][0]["violations"]] == [
        ("wrap.site.models.user", "wrap.site.controllers.home")
    ]


def test_detect_django_apps_as_containers() -> None:
    graph, modules = build(
        [
            ("proj.blog.urls", "proj.blog.views", 1),
            ("proj.blog.views", "proj.blog.models", 2),
            ("proj.shop.models", "proj.shop.views", 7),
            ("proj.settings", "proj.blog", 1),
        ],
        extra=("proj.shop.admin", "proj.other.models", "proj.other.views"),
    )
    detected = detect_style(graph, modules)
    assert detected is not None
    assert detected["style"] == "mvc"
    contract = detected["contracts"][0]
    assert contract["containers"] == ["proj.blog", "proj.shop"]
    result = check_architecture(None, graph, modules)
    assert [(v["importer"], v["imported"]) for v in result["contracts"][0]["violations"]] == [
        ("proj.shop.models", "proj.shop.views")
    ]


def test_detect_layered_by_name() -> None:
    graph, modules = build(
        [
            ("tool.cli", "tool.service.run", 1),
            ("tool.service.run", "tool.storage.db", 2),
            ("tool.storage.db", "tool.cli", 9),
            ("tool.cli", "tool.misc", 1),
        ]
    )
    result = check_architecture(None, graph, modules)
    assert result["style"] == "layered"
    assert result["contracts"][0]["layers"] == [["tool.cli"], ["tool.service"], ["tool.storage"]]
    assert [
        (v["importer"], v["imported"], v["line"]) for v in result["contracts"][0]["violations"]
    ] == [("tool.storage.db", "tool.cli", 9)]
    assert (
        "layered architecture in package tool from the names cli, service, storage"
        in (result["detail"])
    )


@pytest.mark.parametrize(
    ("names", "style", "expected"),
    [
        (
            ["hex.core", "hex.ports", "hex.adapters", "hex.services"],
            "hexagonal",
            [["hex.adapters"], ["hex.services"], ["hex.ports"], ["hex.core"]],
        ),
        (
            ["c.entities", "c.use_cases", "c.gateways", "c.frameworks"],
            "clean",
            [["c.frameworks"], ["c.gateways"], ["c.use_cases"], ["c.entities"]],
        ),
    ],
)
def test_detect_hexagonal_and_clean(names: list[str], style: str, expected: list[Any]) -> None:
    graph, modules = build([], extra=tuple(f"{n}.m" for n in names))
    detected = detect_style(graph, modules)
    assert detected is not None
    assert (detected["style"], detected["contracts"][0]["layers"]) == (style, expected)


def test_detect_layered_by_direction() -> None:
    graph, modules = build(
        [
            ("eng.alpha.a", "eng.beta.b", 1),
            ("eng.beta.b", "eng.gamma.c", 1),
            ("eng.alpha.a", "eng.delta", 1),
            ("eng.delta", "eng.gamma", 1),
            ("eng.gamma.c", "eng", 3),  # the package __init__ is not a layer ...
            ("eng", "eng.alpha", 1),  # ... so this closes an indirect chain
        ]
    )
    result = check_architecture(None, graph, modules)
    assert (result["source"], result["style"]) == ("detected", "layered")
    assert result["contracts"][0]["layers"] == [
        ["eng.alpha"],
        ["eng.beta", "eng.delta"],
        ["eng.gamma"],
    ]
    assert brief(result) == [
        (
            "eng.gamma.c",
            "eng.alpha",
            3,
            ["eng.gamma.c", "eng", "eng.alpha"],
            False,
            "eng.gamma",
            "eng.alpha",
        ),
    ]
    assert "inferred in package eng from the direction of imports" in result["detail"]
    assert (result["checked_edges"], result["conformance"]) == (4, 1.0)


@pytest.mark.parametrize(
    "edges",
    [
        # only two levels deep
        [("x.a", "x.b", 1), ("x.c", "x.b", 1)],
        # a cycle between siblings: no direction
        [("x.a", "x.b", 1), ("x.b", "x.c", 1), ("x.c", "x.a", 1)],
        # nothing at all
        [],
    ],
)
def test_detect_none(edges: list[Edge]) -> None:
    graph, modules = build(edges, extra=("x.a", "x.b", "x.c"))
    assert detect_style(graph, modules) is None
    result = check_architecture(None, graph, modules)
    assert result == {
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


def test_detection_style_follows_the_largest_package() -> None:
    graph, modules = build(
        [("big.api.a", "big.services.b", 1), ("big.services.b", "big.db.c", 1)],
        extra=("big.api.d", "big.api.e", "small.models.m", "small.views.v", "small.controllers.c"),
    )
    detected = detect_style(graph, modules)
    assert detected is not None
    assert detected["style"] == "layered"
    assert [c["name"] for c in detected["contracts"]] == [
        "layered layers in big",
        "mvc layers in small",
    ]
