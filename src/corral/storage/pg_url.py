"""A PostgreSQL store URL, parsed and checked: ``postgresql://user:password@
host:port/database`` (or ``postgres://``) with ``pool_size``,
``statement_timeout``, ``connect_timeout`` and ``sslmode``; :func:`redact`
shows it without its password."""

from __future__ import annotations

import urllib.parse

from corral.core.errors import StoreError

_OPTIONS = {"pool_size", "statement_timeout", "connect_timeout", "sslmode"}


_SSLMODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


class Settings:
    """A parsed PostgreSQL URL: where to connect and how, password kept apart."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise StoreError(f"not a PostgreSQL URL: {redact(url)!r}")
        try:
            port = parsed.port
        except ValueError:
            raise StoreError(f"store URL {redact(url)!r}: the port is not a number") from None
        self.host = parsed.hostname or "localhost"
        self.port = port or 5432
        self.user = urllib.parse.unquote(parsed.username) if parsed.username else None
        self.password = urllib.parse.unquote(parsed.password) if parsed.password else None
        self.database = urllib.parse.unquote(parsed.path.lstrip("/")) or None
        if parsed.fragment:
            raise StoreError(f"store URL {redact(url)!r}: a '#' has no meaning here")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        unknown = sorted(set(query) - _OPTIONS)
        if unknown:
            raise StoreError(
                f"store URL {redact(url)!r}: unknown option(s) {', '.join(unknown)}; "
                f"supported: {', '.join(sorted(_OPTIONS))}"
            )
        self.pool_size = int(_number(url, query, "pool_size", 10, 1, 1000))
        self.statement_timeout = _number(url, query, "statement_timeout", 60.0, 0.001, 86_400)
        self.connect_timeout = _number(url, query, "connect_timeout", 10.0, 0.001, 3600)
        self.sslmode = query.get("sslmode", [None])[-1]
        if self.sslmode is not None and self.sslmode not in _SSLMODES:
            raise StoreError(
                f"store URL {redact(url)!r}: sslmode={self.sslmode!r}; expected one of "
                f"{', '.join(sorted(_SSLMODES))}"
            )
        self.shown = redact(url)
        self.where = f"{self.host}:{self.port}" + (f"/{self.database}" if self.database else "")


def _number(
    url: str, query: dict[str, list[str]], name: str, default: float, low: float, high: float
) -> float:
    if name not in query:
        return default
    text = query[name][-1]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise StoreError(
            f"store URL {redact(url)!r}: {name}={text!r} must be a number from {low:g} to {high:g}"
        )
    return value


def redact(url: str) -> str:
    """``url`` with its password shown as ``***``."""
    try:
        parsed = urllib.parse.urlsplit(url)
        if parsed.password is None:
            return url
        user = parsed.username or ""
        host = parsed.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "postgresql://(an unreadable URL)"


def parse_url(url: str) -> Settings:
    return Settings(url)
