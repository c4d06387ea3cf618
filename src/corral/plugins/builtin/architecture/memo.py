"""Per-file parse results kept between runs, by content digest.

The step cache serves a whole step when none of its inputs changed; after
one file is edited the ``facts`` step must run again, and without this memo
it would read every file of the project again. The memo maps a file's
content digest to its facts (:mod:`.facts`), so only new or changed files
are read. It lives in one JSON
file per analysed project under the user cache directory
(``$CORRAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/corral``, else
``~/.cache/corral``), holds only the files seen in the last run (bounded by
the project's size), and is tagged with the analysis code's version, so a
new corral never reads an old corral's facts. It is best effort: a missing,
corrupt or unwritable memo only costs time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from corral.core.files import read_capped


def cache_root() -> Path:
    """The user cache directory for corral."""
    explicit = os.environ.get("CORRAL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "corral"


def memo_path(root: str | os.PathLike[str], project: str, kind: str = "facts") -> str:
    """Where the memo of one project of one tree lives (``kind``: whose
    results: the analysis's facts, or one of ``corral vibe``'s analysers)."""
    key = hashlib.blake2b(f"{Path(root).resolve()}\0{project}\0{kind}".encode(), digest_size=10)
    return str(cache_root() / "architecture" / f"{kind}-{key.hexdigest()}.json")


#: A memo larger than this is not read (it is rewritten by the next run).
_MAX_BYTES = 200_000_000


def load(path: str, version: str) -> dict[str, Any]:
    try:
        data = json.loads(read_capped(path, _MAX_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != version:
        return {}
    facts = data.get("facts")
    return facts if isinstance(facts, dict) else {}


def save(path: str, version: str, facts: dict[str, Any]) -> None:
    """Replace the memo atomically (a concurrent run sees the old or the new)."""
    target = Path(path)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".facts-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": version, "facts": facts}, fh, separators=(",", ":"))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
