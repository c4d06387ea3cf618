"""Errors as RFC 9457 problem documents (``application/problem+json``):
``{"type", "title", "status", "detail"}`` and, for a bad field, ``path``
(its JSON path, the same message as ``corral validate``). Never a traceback
or an internal path: an unexpected error is a plain 500 and is logged."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec

from corral.core.errors import (
    CorralError,
    EngineClosed,
    ExecutionNotFound,
    InputError,
    Overloaded,
    RetryRefused,
    SpecError,
)

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM",
    "corral_problem",
    "document",
    "documented",
    "problem",
    "problem_headers",
]

#: The media type of a problem document.
PROBLEM = "application/problem+json"

log = logging.getLogger("corral.server")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid workflow or inputs",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def documented(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI answers of a route's errors: each a problem document."""
    from corral.server.bodies import Problem

    return {
        status: ResponseSpec(
            Problem,
            description=_TITLES[status] + (" (Retry-After says when)" if status == 503 else ""),
            media_type=PROBLEM,
            generate_examples=False,
        )
        for status in statuses
    }


def document(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem document (the body of :func:`problem`)."""
    return {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_headers(status: int, headers: dict[str, str] | None = None) -> dict[str, str]:
    """A problem's headers: ``Retry-After`` when the server is busy."""
    headers = dict(headers or {})
    if status in (429, 503):
        headers["Retry-After"] = "1"
    return headers


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    return Response(
        document(status, detail, **extra),
        status_code=status,
        media_type=PROBLEM,
        headers=problem_headers(status, headers),
    )


def corral_problem(exc: CorralError) -> dict[str, Any]:
    """The problem document of a corral error, wherever it is answered (a
    route, or the submission lane of :mod:`.lane`)."""
    if isinstance(exc, ExecutionNotFound):
        return document(404, str(exc))
    if isinstance(exc, (Overloaded, EngineClosed)):
        return document(503, str(exc))
    if isinstance(exc, SpecError):
        status = 409 if "already stored" in exc.message else 422
        kind = "inputs" if isinstance(exc, InputError) else "spec"
        return document(status, exc.message, path=exc.path, kind=kind)
    if isinstance(exc, RetryRefused):
        return document(409, str(exc), steps=exc.steps)
    return document(400, str(exc))  # (a UsageError, or any other corral error)


def _corral(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if not isinstance(exc, CorralError):
        return _internal(request, exc)
    body = corral_problem(exc)
    status = body["status"]
    return Response(body, status_code=status, media_type=PROBLEM, headers=problem_headers(status))


def _http(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        fields = [_field(e) for e in errors if isinstance(e, dict)]
        detail = "; ".join(f"{f['path']}: {f['message']}" for f in fields) or str(exc.detail)
        return problem(400, detail, errors=fields)
    # (keeps what the status needs, e.g. a 405's Allow)
    return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def _field(error: dict[str, Any]) -> dict[str, Any]:
    key, message = error.get("key"), str(error.get("message"))
    if key == "data" and message == "'data'":  # no body at all
        return {"path": "$", "message": "a JSON object body is required"}
    if key == "data":  # the body as a whole (not JSON, or not an object)
        return {"path": "$", "message": message}
    return {"path": f"$.{key}" if key else "$", "message": message}


def _too_deep(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # msgspec refuses JSON deeper than the interpreter's recursion limit
    return problem(400, "the body is nested too deeply", path="$")


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("internal error answering %s %s", request.method, request.url.path)
    return problem(500, "the server failed to answer this request; its log says why")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    CorralError: _corral,
    HTTPException: _http,
    RecursionError: _too_deep,
    Exception: _internal,
}
