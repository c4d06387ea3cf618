"""The OpenAPI document against the live server, property-based
(schemathesis, bounded in examples and time): no 5xx, every status, content
type, header and body as documented, invalid data refused, undeclared
methods answered 405 with ``Allow``.

Left out: ``positive_data_acceptance`` (a spec that is a JSON object, or a
string of YAML, is "valid" to the document yet meaningless to the engine:
422 is the right answer), and the two event streams (they never end)."""

from __future__ import annotations

import sys
from pathlib import Path

import trio


async def test_the_live_server_keeps_its_openapi_document(url: str, tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--exclude-path-regex",
        "/events$",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--max-time",
        "30",
        "--workers",
        "1",
        "--seed",
        "20261203",
        "--request-timeout",
        "20",
    ]
    with trio.fail_after(240):
        done = await trio.run_process(
            args, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path
        )
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 0, out[-6000:] + done.stderr.decode(errors="replace")[-2000:]
    assert "Tested: 18" in out  # every operation but the two streams
