"""The status rules have one home (corral/status.py, issue 12): the schema
and the stores agree with it."""

from __future__ import annotations

import re

import pytest

import corral
from corral.core import status
from corral.storage.migrate import fresh_schema


def _check_list(table: str) -> set[str]:
    """The statuses a table's CHECK constraint allows, read from the schema:
    an ``IN (...)`` list, or comparisons joined by OR (the step table's,
    migration 011)."""
    body = fresh_schema().split(f"CREATE TABLE {table} (", 1)[1].split(";", 1)[0]
    found = re.search(r"status\s+TEXT NOT NULL CHECK \((status .*?)\),?\n\s+\w+ ", body, re.S)
    assert found is not None, table
    check = " ".join(found.group(1).split())
    listed = re.fullmatch(r"status IN \(([^)]*)\)", check)
    if listed is not None:
        return {s.strip().strip("'") for s in listed.group(1).split(",")}
    compared = check.split(" OR ")
    assert all(re.fullmatch(r"status = '\w+'", c) for c in compared), check
    return {c.split("'")[1] for c in compared}


def test_the_schema_allows_exactly_the_statuses_of_the_model() -> None:
    assert _check_list("workflow_executions") == set(status.EXECUTION_STATUSES)
    assert _check_list("step_executions") == set(status.STEP_STATUSES)


def test_the_sets_partition_the_statuses() -> None:
    for every, terminal in (
        (status.EXECUTION_STATUSES, status.TERMINAL_EXECUTION),
        (status.STEP_STATUSES, status.TERMINAL_STEP),
    ):
        assert set(every) == terminal | status.UNFINISHED
        assert not terminal & status.UNFINISHED
    assert status.FINISHED_OK <= status.TERMINAL_STEP
    assert status.sql_in(status.UNFINISHED) == "('pending', 'running')"


def test_transitions() -> None:
    ex, st = status.EXECUTION_TRANSITIONS, status.STEP_TRANSITIONS
    assert set(ex) == set(status.EXECUTION_STATUSES) and set(st) == set(status.STEP_STATUSES)
    assert status.legal(ex, "pending", "running") and status.legal(ex, "running", "failed")
    assert not status.legal(ex, "succeeded", "running")  # finished is final
    assert not status.legal(ex, "running", "pending")
    assert status.legal(st, "running", "pending")  # an interrupted step, resumed
    assert not any(status.legal(st, s, "running") for s in status.TERMINAL_STEP)


@pytest.mark.parametrize(
    ("ended", "kind"),
    [
        ("failed", corral.WorkflowFailed),
        ("timed_out", corral.WorkflowTimedOut),
        ("cancelled", corral.WorkflowCancelled),
    ],
)
def test_each_ending_has_its_exception(ended: str, kind: type[Exception]) -> None:
    exc = status.failure_for(ended, execution_id="e1", message="why", step="s")
    assert type(exc) is kind and exc.execution_id == "e1"  # type: ignore[attr-defined]


def test_no_status_is_written_as_a_string_outside_its_module() -> None:
    # Compare with corral.core.status's names (SUCCEEDED, UNFINISHED ...), never with
    # a string of one's own. errors.py sits below status.py (status imports it)
    # and only words a message; SQL text is built from status.sql_in.
    import io
    import tokenize
    from pathlib import Path

    names = set(status.STEP_STATUSES)
    src = Path(status.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        if path.name in ("status.py", "errors.py"):
            continue
        text = path.read_text(encoding="utf-8")
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            body = tok.string[1:-1]
            if tok.type == tokenize.STRING and tok.string[:1] in ("'", '"') and body in names:
                found.append(f"{path.relative_to(src)}:{tok.start[0]}: {tok.string}")
    assert found == []
