"""Bearer tokens with scopes for ``corral serve``.

Tokens come from ``--token-file`` or ``$CORRAL_API_TOKENS``: one per line
(or comma-separated in the variable) as ``SCOPE:TOKEN``, the scope one of
``read`` (GET), ``run`` (submit, cancel; implies read) and ``admin`` (store
workflow definitions; implies both). Only a SHA-256 of each token is kept,
and a presented token is compared with ``hmac.compare_digest``; tokens never
reach a log. With no token configured, every request is allowed, and the
server refuses to listen anywhere but on loopback (see :func:`check_bind`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from corral.core.errors import ConfigError

__all__ = ["COOKIE", "SCOPES", "Guard", "Tokens", "check_bind", "load_tokens", "presented_scopes"]

#: Each scope and the scopes it includes.
SCOPES = {"read": {"read"}, "run": {"read", "run"}, "admin": {"read", "run", "admin"}}


class Tokens:
    """The configured tokens, as digests with their scopes."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._digests = [(hashlib.sha256(t.encode()).digest(), scope) for scope, t in pairs]
        # Status-page sessions: the cookie holds an HMAC of a token's digest
        # under a key of this process, never the token (and grants read only).
        self._key = secrets.token_bytes(32)

    def session(self, token: str) -> str:
        """The cookie value for a known token (valid until the server restarts)."""
        digest = hashlib.sha256(token.encode()).digest()
        return hmac.new(self._key, digest, hashlib.sha256).hexdigest()

    def session_ok(self, value: str) -> bool:
        """Whether a cookie value is a session of a configured token."""
        found = False
        for digest, _scope in self._digests:
            expected = hmac.new(self._key, digest, hashlib.sha256).hexdigest()
            found |= hmac.compare_digest(expected, value)
        return found

    def __bool__(self) -> bool:
        return bool(self._digests)

    def scopes(self, token: str) -> set[str] | None:
        """The scopes a presented token grants, or ``None`` for an unknown one
        (every configured token is compared, in constant time)."""
        presented = hashlib.sha256(token.encode()).digest()
        found: set[str] | None = None
        for digest, scope in self._digests:
            if hmac.compare_digest(digest, presented):
                found = SCOPES[scope]
        return found


def load_tokens(token_file: str | None, environ: dict[str, str] | None = None) -> Tokens:
    """The tokens of ``token_file`` and ``$CORRAL_API_TOKENS``; a malformed
    line is a :class:`ConfigError` naming where it is (never the token)."""
    env = os.environ if environ is None else environ
    entries: list[tuple[str, str]] = []
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {token_file}: {exc}") from None
        lines = [(f"{token_file}:{n}", line) for n, line in enumerate(text.splitlines(), 1)]
    else:
        lines = []
    lines += [("CORRAL_API_TOKENS", part) for part in env.get("CORRAL_API_TOKENS", "").split(",")]
    for where, line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        scope, sep, token = line.partition(":")
        if not sep or scope.strip() not in SCOPES or len(token.strip()) < 16:
            raise ConfigError(
                f"{where}: expected SCOPE:TOKEN with SCOPE one of read, run, admin and a token "
                "of at least 16 characters"
            )
        entries.append((scope.strip(), token.strip()))
    return Tokens(entries)


def check_bind(host: str, tokens: Tokens) -> None:
    """Without tokens, only a loopback address may be bound."""
    if tokens:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"--host {host}: no API token is configured, so corral serve listens on loopback "
            "only; give --token-file FILE (or CORRAL_API_TOKENS) to listen on other addresses"
        )


#: The cookie the status page keeps a signed-in token in (it grants *read* only).
COOKIE = "corral_token"


def _token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization") or ""
    kind, _sep, token = header.partition(" ")
    if kind.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _session(connection: ASGIConnection[Any, Any, Any, Any], tokens: Tokens) -> bool:
    value = connection.cookies.get(COOKIE)
    return bool(value) and tokens.session_ok(str(value))


def presented_scopes(
    connection: ASGIConnection[Any, Any, Any, Any], *, allow_cookie: bool = False
) -> set[str] | None:
    """The scopes the request's token grants: ``None`` when no token is
    configured (everything is allowed), empty for none or an unknown one.
    The cookie counts only when ``allow_cookie`` (reads: a cookie is sent by
    a browser on its own, so it must never be enough to change anything)."""
    tokens: Tokens = connection.app.state.tokens
    if not tokens:
        return None
    token = _token(connection)
    if token is not None:
        return tokens.scopes(token) or set()
    return {"read"} if allow_cookie and _session(connection, tokens) else set()


class Guard:
    """A route guard: the request's bearer token must grant ``scope`` (for
    ``read``, the status page's cookie will do)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        # async: Litestar runs a sync guard in a worker thread (a thread hop
        # per request, measured at ~5% of the server's time under load)
        tokens: Tokens = connection.app.state.tokens
        if not tokens:
            return
        token = _token(connection)
        if token is None:
            if self.scope == "read" and _session(connection, tokens):
                return  # the status page's session: reads only
            raise NotAuthorizedException("a bearer token is required (Authorization: Bearer ...)")
        scopes = tokens.scopes(token)
        if scopes is None:
            raise NotAuthorizedException("unknown token")
        if self.scope not in scopes:
            raise PermissionDeniedException(f"this token's scope does not allow {self.scope!r}")
