"""Reading a file a user named (corral/files.py)."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from corral.core.files import read_capped


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"hello")
    assert read_capped(tmp_path / "a") == b"hello"
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert read_capped(tmp_path / "link", limit=5) == b"hello"


def test_past_the_limit(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 11)
    with pytest.raises(OSError) as info:
        read_capped(tmp_path / "a", limit=10)
    assert info.value.errno == errno.EFBIG and "too large" in str(info.value.strerror)


def test_what_is_no_regular_file_is_refused_without_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        for name, kind in (("fifo", "a FIFO"), ("zero", "a device file")):
            with pytest.raises(OSError) as info:
                read_capped(tmp_path / name)
            assert info.value.errno == errno.EINVAL
            assert info.value.strerror == f"not a regular file ({kind})"
        with pytest.raises(OSError):  # a socket cannot even be opened as a file
            read_capped(tmp_path / "sock")
    finally:
        sock.close()
    with pytest.raises(OSError) as info:
        read_capped(tmp_path)
    assert info.value.errno == errno.EISDIR
