"""A throwaway PostgreSQL server for the tests and the perf suite.

``start()`` runs Debian's ``initdb`` and ``pg_ctl`` (as the ``postgres``
user when run as root) on a data directory in a temporary folder, listening
on 127.0.0.1 and a free port only, and returns a :class:`Cluster` with its
URL; ``Cluster.stop()`` stops it and deletes the folder. When the server
binaries are missing and we are root with ``apt-get``, Debian's
``postgresql`` package is installed first (what a fresh CI machine needs).

From a shell (``.ci/run``)::

    eval "$(python3 tests/pgcluster.py start)"   # sets CORRAL_TEST_POSTGRES, PGCLUSTER_DIR
    python3 tests/pgcluster.py stop "$PGCLUSTER_DIR"
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "corral"
PASSWORD = "corral-test-secret"


class Unavailable(Exception):
    """No PostgreSQL server can be started here (the reason is the message)."""


@dataclass
class Cluster:
    url: str
    directory: Path
    bindir: Path

    def stop(self) -> None:
        stop(self.directory, self.bindir)

    def restart(self) -> None:
        """Restart the server (fast shutdown: every connection is cut)."""
        _run(
            _as_server_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-l",
                    str(self.directory / "server.log"),
                    "-m",
                    "fast",
                    "-w",
                    "restart",
                ]
            )
        )


def _bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def ensure_installed() -> Path:
    """The folder of ``initdb``/``pg_ctl``, installing Debian's package if needed."""
    bindir = _bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("no PostgreSQL server binaries (install Debian's `postgresql` package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}")
    bindir = _bindir()
    if bindir is None:
        raise Unavailable("installed `postgresql`, yet no initdb was found")
    return bindir


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*, durable: bool = False) -> Cluster:
    """Start a server. ``durable`` keeps PostgreSQL's default fsync and
    synchronous commit (the perf suite); the tests turn them off."""
    bindir = ensure_installed()
    directory = Path(tempfile.mkdtemp(prefix="corral-pg-"))
    data = directory / "data"
    pwfile = directory / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        shutil.chown(pwfile, "postgres")
    directory.chmod(0o700)
    try:
        _run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        )
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {directory} -c max_connections=200"
        if not durable:
            options += " -F -c synchronous_commit=off -c full_page_writes=off"
        _run(
            _as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(directory / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            )
        )
    except Unavailable:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Cluster(f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres", directory, bindir)


def stop(directory: Path, bindir: Path | None = None) -> None:
    bindir = bindir or _bindir()
    data = directory / "data"
    if bindir is not None and data.exists():
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
    shutil.rmtree(directory, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    # Output to files, never pipes: a server started here would inherit a
    # pipe and hold it open, and waiting for its end would never return.
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
        out.seek(0)
        done.stdout = out.read()
        done.stderr = ""
    if done.returncode != 0:
        program = Path(cmd[3] if cmd[0] == "runuser" else cmd[0]).name
        raise Unavailable(f"`{program}` failed: {(done.stderr or done.stdout).strip()[-400:]}")


def _main(argv: list[str]) -> int:
    if argv[:1] == ["start"]:
        try:
            cluster = start(durable="--durable" in argv)
        except Unavailable as exc:
            print(f"PostgreSQL not started: {exc}", file=sys.stderr)
            return 1
        print(f"export CORRAL_TEST_POSTGRES='{cluster.url}' PGCLUSTER_DIR='{cluster.directory}'")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        stop(Path(argv[1]))
        return 0
    print("usage: pgcluster.py start [--durable] | stop DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
