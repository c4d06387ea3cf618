"""What the store operations mean, once for every backend.

Each rule is written twice, side by side: as a predicate on a record (the
memory store, and any check in Python) and as the SQL condition that says
the same (the SQLite store; a PostgreSQL store reuses it). A backend adds
SQL, not meaning: the store suite (tests/storage/test_store.py) runs every
backend against these rules. Pure logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from corral.core.model import ExecutionRecord
from corral.core.status import PENDING, UNFINISHED, sql_in
from corral.storage.base import DefinitionRecord

__all__ = [
    "CLAIMABLE_SQL",
    "CLAIM_ORDER_SQL",
    "HELD_SQL",
    "NOT_OWNED_SQL",
    "PAUSED_ALL",
    "UNFINISHED_SQL",
    "claim_order",
    "claimable",
    "held",
    "lease_held",
    "newest",
    "not_owned",
    "runnable_with",
    "unfinished",
]


def unfinished(record: ExecutionRecord) -> bool:
    """Not finished: no finish time, and a status that is not terminal."""
    return record.finished_at is None and record.status in UNFINISHED


UNFINISHED_SQL = f"finished_at IS NULL AND status IN {sql_in(UNFINISHED)}"


def lease_held(record: ExecutionRecord, now: float) -> bool:
    """Some engine holds it: its lease runs until ``now`` or later."""
    return record.lease_expires_at is not None and record.lease_expires_at >= now


def not_owned(record: ExecutionRecord, owner: str) -> bool:
    """``owner`` does not (or no longer) own it: writes it makes are fenced off."""
    return record.owner is None or record.owner != owner


NOT_OWNED_SQL = "(owner IS NULL OR owner != ?)"  # ? = owner


PAUSED_ALL = "*"
"""The name under which every workflow is paused at once."""


def held(record: ExecutionRecord, paused: Collection[str]) -> bool:
    """Held by a pause: queued (never started) and its workflow paused (by
    name, or all of them). What runs already goes on."""
    return record.status == PENDING and (record.workflow in paused or PAUSED_ALL in paused)


HELD_SQL = (
    f"(status = '{PENDING}' AND EXISTS (SELECT 1 FROM paused_workflows AS p "
    f"WHERE p.workflow = workflow_executions.workflow OR p.workflow = '{PAUSED_ALL}'))"
)


def claimable(
    record: ExecutionRecord, owner: str, now: float, paused: Collection[str] = ()
) -> bool:
    """Another engine (``owner``) may take it over: a top-level execution,
    unfinished, whose lease has expired (or that never had one), not its own,
    and not held by a pause (``paused``: the paused workflows)."""
    return (
        record.parent_id is None
        and unfinished(record)
        and not lease_held(record, now)
        and not_owned(record, owner)
        and not held(record, paused)
    )


CLAIMABLE_SQL = (
    f"parent_id IS NULL AND {UNFINISHED_SQL} "
    f"AND (lease_expires_at IS NULL OR lease_expires_at < ?) AND {NOT_OWNED_SQL} "
    f"AND NOT {HELD_SQL}"
)  # ? = now, owner


def runnable_with(record: ExecutionRecord, handlers: list[str] | None) -> bool:
    """An engine that has ``handlers`` (``None``: any) can run it: every handler
    it needs is among them (an execution that does not say, any engine can)."""
    return handlers is None or set(record.handlers) <= set(handlers)


def claim_order(record: ExecutionRecord) -> tuple[int, float]:
    """Who is claimed first: highest priority, then oldest."""
    return (-record.priority, record.created_at)


CLAIM_ORDER_SQL = "priority DESC, created_at"


def newest(definitions: Iterable[DefinitionRecord]) -> DefinitionRecord | None:
    """The newest registered definition: the one registered last (by its
    ``created_at``; of equal ones, the later in ``definitions``)."""
    best: DefinitionRecord | None = None
    for definition in definitions:
        if best is None or definition.created_at >= best.created_at:
            best = definition
    return best
