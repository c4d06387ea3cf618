"""Reading a file a user named: only a regular file, and never past a limit.

A path may name anything: a FIFO (``open`` would wait for a writer forever),
a device (``/dev/zero`` never ends), a socket, or a file far larger than any
workflow. ``stat`` alone does not protect (``/dev/zero`` has size 0, a file
may grow after it): the file is opened without blocking, checked on the
open descriptor, and read with a hard cap. Pure of corral's own state; the
errors are ``OSError``\\s whose ``strerror`` says what is wrong.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

__all__ = ["DEFAULT_LIMIT", "kind_of", "read_capped", "toml_position"]

_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")

#: The most bytes read from a file the user names (a workflow, a config).
DEFAULT_LIMIT = 10_000_000


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def read_capped(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> bytes:
    """The bytes of the regular file at ``path`` (a link is followed).

    Raises ``OSError``: the usual ones (no such file, permission), ``EISDIR``
    for a folder, ``EINVAL`` for anything else that is not a regular file
    (FIFO, socket, device), ``EFBIG`` past ``limit`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(Path(path), flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = kind_of(info.st_mode)
            code = errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.EINVAL
            raise OSError(code, f"not a regular file ({what})", str(path))
        if info.st_size > limit:
            raise OSError(
                errno.EFBIG, f"too large ({info.st_size} bytes; limit {limit})", str(path)
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow after the fstat
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OSError(errno.EFBIG, f"too large (over {limit} bytes)", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def toml_position(message: str) -> tuple[str, int | None, int | None]:
    """A ``tomllib`` error message without its ``(at line L, column C)``
    tail, and ``L`` and ``C`` (``None`` when it has no such tail): each
    reader of TOML files says where in its own words."""
    m = _TOML_AT.search(message)
    if m is None:
        return message, None, None
    return message[: m.start()], int(m.group(1)), int(m.group(2))
