"""Schema migrations: numbered ``.sql`` files, each with a ``.down.sql``.

``storage/migrations/<backend>/NNN_name.sql`` moves the schema from version
NNN-1 to NNN; ``NNN_name.down.sql`` moves it back. Applied migrations are
recorded in ``schema_migrations`` with the checksum of their file, so a
migration edited after it was applied is detected and refused. A fresh
database gets ``storage/schema/<backend>.sql`` (equal, by test, to all
migrations applied in order) and every migration recorded as applied.

This module works on a DB-API connection synchronously; stores call it from
their connection thread.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from corral.core.errors import StoreError

__all__ = [
    "Migration",
    "current_version",
    "fresh_schema",
    "migrate",
    "migrations",
    "plan",
]

# The SQL files ship inside the package (package data); read as files, not
# through importlib.resources, whose import alone costs ~25 ms at every start.
_HERE = Path(__file__).resolve().parent
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


def migrations(backend: str = "sqlite") -> list[Migration]:
    """The migrations shipped for ``backend``, in order."""
    folder = _HERE / "migrations" / backend
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m is None or entry.name.endswith(".down.sql"):
            continue
        down = folder.joinpath(entry.name[: -len(".sql")] + ".down.sql")
        if not down.is_file():
            raise StoreError(f"migration {entry.name} has no {down.name}")
        found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(), down.read_text()))
    found.sort(key=lambda mig: mig.version)
    for i, mig in enumerate(found, start=1):
        if mig.version != i:
            raise StoreError(f"migrations of {backend} are not numbered 1..n: {mig.label}")
    return found


def fresh_schema(backend: str = "sqlite") -> str:
    return (_HERE / "schema" / f"{backend}.sql").read_text()


_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""


def _applied(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    conn.execute(_BOOTSTRAP)
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version, read without writing anything (a read-only
    connection): 0 when there is no ``schema_migrations`` table."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def current_version(conn: sqlite3.Connection) -> int:
    applied = _applied(conn)
    return max(applied, default=0)


def _run_script(conn: sqlite3.Connection, script: str, record: str) -> None:
    """Run one migration and its bookkeeping atomically."""
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n;{record};\nCOMMIT;")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def plan(
    known: list[Migration], applied: dict[int, tuple[str, str]], to: int | None
) -> list[tuple[Migration, bool]]:
    """What bringing a database whose ``applied`` migrations (version -> (name,
    checksum)) are these to version ``to`` (default: the newest) takes: the
    migrations to apply (``True``) or roll back (``False``), in order. Refuses
    an unknown version, a newer schema and an edited migration. Pure."""
    latest = len(known)
    target = latest if to is None else to
    if not 0 <= target <= latest:
        raise StoreError(f"no schema version {target}: versions go from 0 to {latest}")
    newest = max(applied, default=0)
    if newest > latest:
        raise StoreError(
            f"the database has schema version {newest}, newer than this corral knows "
            f"({latest}); upgrade corral"
        )
    for mig in known:
        if mig.version in applied and applied[mig.version][1] != mig.checksum:
            raise StoreError(
                f"migration {mig.label} was changed after it was applied to this database "
                "(checksum mismatch); restore the original file and add a new migration instead"
            )
    steps = [(mig, True) for mig in known if newest < mig.version <= target]
    steps += [(mig, False) for mig in reversed(known) if target < mig.version <= newest]
    return steps


#: What SQLite says when a migration's work was done meanwhile by another
#: process that opened the same new (or old) database at the same moment.
_RACED = (
    "already exists",
    "duplicate column name",
    "no such column",
    "no such table",
    # a migration that makes a table anew (011) runs again without error;
    # recording it a second time is what fails
    "UNIQUE constraint failed: schema_migrations.version",
)


def use_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for other openers.

    Switching a new database to WAL needs it to itself: SQLite answers
    "database is locked" at once, without its busy handler, while another
    connection is opening it too (three ``corral run`` started together on
    a new file). Tried again every 20 ms for up to ``patience`` seconds.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(conn: sqlite3.Connection, to: int | None = None, backend: str = "sqlite") -> list[str]:
    """Bring the schema to version ``to`` (default: the newest); return what was
    done, one line per migration applied or rolled back.

    Several processes may open a new database at once (three ``corral run``
    started together): each reads "nothing applied", one migrates, and the
    others' scripts then fail on tables that exist now. Each migration runs
    in a transaction of its own, so such a failure changed nothing: the
    schema is read again and what is left (usually nothing) is done.
    """
    for attempt in range(5):
        try:
            return _migrate_once(conn, to, backend)
        except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:
            if attempt == 4 or not any(words in str(exc) for words in (*_RACED, "locked")):
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate_once(conn: sqlite3.Connection, to: int | None, backend: str) -> list[str]:
    known = migrations(backend)
    latest = len(known)
    applied = _applied(conn)
    steps = plan(known, applied, to)
    now = time.time()
    has_tables = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations'"
    ).fetchone()[0]
    if not applied and not has_tables and len(steps) == latest and backend == "sqlite":
        # A fresh database: the schema at once, every migration recorded.
        records = ";".join(
            f"INSERT INTO schema_migrations VALUES ({m.version}, '{m.name}', "
            f"'{m.checksum}', {now!r})"
            for m in known
        )
        _run_script(conn, fresh_schema(backend), records)
        return [f"created schema version {latest} (fresh database)"]
    done: list[str] = []
    for mig, up in steps:
        if up:
            _run_script(
                conn,
                mig.up,
                f"INSERT INTO schema_migrations VALUES ({mig.version}, '{mig.name}', "
                f"'{mig.checksum}', {now!r})",
            )
            done.append(f"applied {mig.label}")
        else:
            _run_script(
                conn, mig.down, f"DELETE FROM schema_migrations WHERE version = {mig.version}"
            )
            done.append(f"rolled back {mig.label}")
    return done
