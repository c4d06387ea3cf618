"""An embedder that never analyses pays nothing for the analyser: opening
an engine registers the built-in architecture plugin (its handlers are
there) without importing the analysis itself."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys, trio
import corral

async def main():
    async with corral.open_engine("memory://", entry_points=False) as engine:
        wf = corral.Workflow("w")
        wf.step("a", "core.echo", value=1)
        assert await engine.run(wf) == {"a": 1}
        handlers = sorted(engine.registry)

    loaded = sorted(m for m in sys.modules if m.startswith("corral.plugins.builtin.architecture."))
    print(json.dumps({"handlers": handlers, "loaded": loaded}))

trio.run(main)
"""

ANALYSER = {"cycles", "facts", "graph", "layers", "metrics", "report", "score", "render", "memo"}


def test_the_analyser_is_not_imported_by_an_engine_that_does_not_analyse() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "architecture.scan" in seen["handlers"]  # registered ...
    loaded = {m.rsplit(".", 1)[1] for m in seen["loaded"]}
    assert not loaded & ANALYSER, loaded  # ... but not imported
