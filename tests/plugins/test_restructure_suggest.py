"""Moves proposed from the analysis: they break package cycles, create none,
and make a plan file that `corral restructure --plan` takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from corral.plugins.builtin.restructure.architecture import analysis, predicted_cycles
from corral.plugins.builtin.restructure.moves import Move, check, parse_plan
from corral.plugins.builtin.restructure.suggest import suggestion

ROOT = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CYCLE = {
    "app/__init__.py": "",
    "app/domain/__init__.py": "",
    "app/domain/models.py": "class Order: ...\n",
    "app/domain/pricing.py": "from app.services.rates import TAX\nfrom app.domain.models import Order\n",
    "app/services/__init__.py": "",
    "app/services/rates.py": "TAX = 0.2\n",
    "app/services/orders.py": "from app.domain.pricing import *\nfrom app.domain import models\n",
}


def test_a_move_that_breaks_the_package_cycle(tmp_path: Path) -> None:
    root = write(tmp_path, CYCLE)
    now = analysis(root)
    assert now.summary["package_cycles"] == [["app.domain", "app.services"]]
    proposed = suggestion(now, now.kinds)
    assert proposed["moves"] == [Move("app.domain.pricing", "app.services.pricing")]
    after = predicted_cycles(now, check(proposed["moves"], now.kinds), [])
    assert after["package_cycles"] == [] and after["new_package_cycles"] == []
    moves, _ = parse_plan(proposed["plan"], "plan.toml")
    assert moves == proposed["moves"]
    assert "# package cycles after these moves: 0" in proposed["plan"]


def test_nothing_to_propose_without_cycles(tmp_path: Path) -> None:
    root = write(tmp_path, {"app/__init__.py": "", "app/a.py": "import app.b\n", "app/b.py": ""})
    now = analysis(root)
    assert suggestion(now, now.kinds)["moves"] == []


def test_analyze_suggests_and_restructure_applies(tmp_path: Path) -> None:
    root = write(tmp_path / "proj", CYCLE)
    plan = tmp_path / "moves.toml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "analyze",
            str(root),
            "--format",
            "json",
            "--out",
            str(tmp_path / "r.json"),
            "--suggest-moves",
            str(plan),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 suggested move(s) written to" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "corral", "restructure", str(root), "--plan", str(plan), "--apply"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "package cycles 1 -> 0" in done.stdout
    assert (root / "app/services/pricing.py").is_file()


LAYERED = {
    "pyproject.toml": (
        '[tool.corral.architecture]\ncontainers = ["app"]\nlayers = ["web", "core"]\n'
    ),
    "app/__init__.py": "",
    "app/web/__init__.py": "",
    "app/web/views.py": "from app.core.models import Order\nfrom app.web.format import money\n",
    # a pure helper that sits in the upper layer, yet the lower one needs it
    "app/web/format.py": "def money(x):\n    return f'{x:.2f}'\n",
    "app/core/__init__.py": "",
    "app/core/models.py": "from app.web.format import money\n\nclass Order: ...\n",
}


def test_a_move_that_resolves_a_layer_violation(tmp_path: Path) -> None:
    root = write(tmp_path, LAYERED)
    now = analysis(root)
    assert now.summary["violations"] == 1
    assert now.layer_violations == [("app.core.models", "app.web.format", "app.core", "app.web")]
    proposed = suggestion(now, now.kinds)
    # the helper moves down (moving models up would make views import upward twice)
    assert proposed["moves"] == [Move("app.web.format", "app.core.format")]
    assert "# layer contract violations today: 1" in proposed["plan"]
    assert "# layer contract violations after these moves: 0" in proposed["plan"]


def test_a_violation_whose_moves_would_each_add_another_gives_no_move(tmp_path: Path) -> None:
    files = dict(LAYERED)
    # format needs the web layer itself (moving it down moves the violation
    # along), and models is needed by core (moving it up adds another)
    files["app/web/format.py"] = "import app.web.views\n"
    files["app/web/views.py"] = "VIEWS = []\n"
    files["app/core/other.py"] = "from app.core.models import Order\n"
    now = analysis(write(tmp_path, files))
    assert now.summary["violations"] == 1 and now.summary["package_cycles"] == []
    assert suggestion(now, now.kinds)["moves"] == []
