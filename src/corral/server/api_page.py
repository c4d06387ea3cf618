"""The rendered API page at ``/schema``: every operation of the OpenAPI
document with its parameters, body and answers, and every body's fields,
drawn on the server from the same document ``/schema/openapi.json`` serves.
Litestar's bundled renderers (Swagger, Redoc, Scalar …) load their scripts
from a CDN; this one works offline and needs no script at all."""

from __future__ import annotations

import html
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

from corral.server.page_assets import PAGE_CSS

__all__ = ["ApiPage"]

_e = html.escape
_METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``Name`` for a reference, ``list[...]``, unions."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items') or {})}]"
    if isinstance(kind, list):
        return " | ".join(_e(str(k)) for k in kind)
    if "enum" in schema:
        return " | ".join(_e(repr(v)) for v in schema["enum"])
    if "const" in schema:
        return _e(repr(schema["const"]))
    return _e(str(kind or "any"))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    params = "".join(
        f"<tr><td class=mono>{_e(p['name'])}</td><td>{_e(p['in'])}</td>"
        f"<td>{_type(p.get('schema') or {})}</td><td>{'yes' if p.get('required') else ''}</td>"
        f"<td>{_e(p.get('description') or '')}</td></tr>"
        for p in op.get("parameters") or []
    )
    body = ""
    request = (op.get("requestBody") or {}).get("content") or {}
    for media, content in request.items():
        body += f"<p>Body <code>{_e(media)}</code>: {_type(content.get('schema') or {})}</p>"
    answers = ""
    for code, answer in sorted((op.get("responses") or {}).items()):
        content = answer.get("content") or {}
        kinds = ", ".join(
            f"<code>{_e(m)}</code> {_type(c.get('schema') or {})}" for m, c in content.items()
        )
        answers += (
            f"<tr><td class=num>{_e(str(code))}</td>"
            f"<td>{_e(answer.get('description') or '')}</td><td>{kinds}</td></tr>"
        )
    anchor = f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "")
    return (
        f'<section id="{_e(anchor)}"><h2><span class=mono>{method.upper()} {_e(path)}</span></h2>'
        f"<p>{_e(op.get('summary') or '')}</p>"
        + (f"<p>{_e(op['description'])}</p>" if op.get("description") else "")
        + (
            "<table><thead><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>"
            f"<th></th></tr></thead><tbody>{params}</tbody></table>"
            if params
            else ""
        )
        + body
        + "<table><thead><tr><th>status</th><th>meaning</th><th>body</th></tr></thead>"
        f"<tbody>{answers}</tbody></table></section>"
    )


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required") or [])
    rows = "".join(
        f"<tr><td class=mono>{_e(field)}</td><td>{_type(sub)}</td>"
        f"<td>{'yes' if field in required else ''}</td></tr>"
        for field, sub in (schema.get("properties") or {}).items()
    )
    inner = (
        "<table><thead><tr><th>field</th><th>type</th><th>required</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else f"<p>{_type(schema)}</p>"
    )
    return f'<section id="schema-{_e(name)}"><h2 class=mono>{_e(name)}</h2>{inner}</section>'


def render_document(doc: dict[str, Any], json_url: str) -> str:
    info = doc.get("info") or {}
    ops = [
        _operation(path, method, item[method])
        for path, item in sorted((doc.get("paths") or {}).items())
        for method in _METHODS
        if method in item
    ]
    schemas = (doc.get("components") or {}).get("schemas") or {}
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>{PAGE_CSS}</style></head><body>"
        f'<header><h1><a href="/">corral</a></h1><span>HTTP API</span></header><main>'
        f'<p>The OpenAPI document: <a href="{_e(json_url)}">{_e(json_url)}</a>. '
        "Errors are <code>application/problem+json</code> (RFC 9457).</p>"
        + "".join(ops)
        + "<h2>Bodies</h2>"
        + "".join(_schema(n, s) for n, s in sorted(schemas.items()))
        + "</main></body></html>"
    )


class ApiPage(OpenAPIRenderPlugin):
    """Renders the OpenAPI document as one offline HTML page."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return render_document(openapi_schema, self.get_openapi_json_route(request)).encode()
