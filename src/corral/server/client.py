"""``corral.server.client.Client``: corral's HTTP API from Python (``corral serve``),
so that other services need not write requests by hand.

An async client (httpx, so it runs under Trio and asyncio alike)::

    async with Client("http://127.0.0.1:8080", token="...") as api:
        execution = await api.submit("hello", {"name": "x"}, key="order-17")
        result = await api.result(execution)        # waits on the event stream
        async for event in api.events(execution):   # or follow it yourself
            ...

An error answer is an :class:`~corral.core.errors.ApiError` (status, detail,
path); a failed, cancelled or timed-out execution makes :meth:`Client.result`
raise :class:`~corral.core.errors.WorkflowFailed`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

from corral.core.errors import ApiError, UsageError, WorkflowFailed
from corral.core.status import SUCCEEDED, TERMINAL_EXECUTION

__all__ = ["Client"]


class Client:
    """An async client of one ``corral serve``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        try:
            import httpx
        except ImportError:
            raise UsageError("corral.client needs httpx: pip install 'corral[serve]'") from None
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        """Any endpoint: its decoded JSON answer, or :class:`ApiError`."""
        response = await self._http.request(method, path, **kw)
        if response.status_code >= 400:
            _raise(response.status_code, response.content)
        return response.json()

    async def submit(
        self,
        workflow: str | Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        priority: int = 0,
    ) -> str:
        """Submit a stored workflow (``"name"`` or ``"name@version"``) or an
        inline spec (a mapping); the execution's id."""
        body: dict[str, Any] = {"inputs": dict(inputs or {}), "priority": priority}
        body["workflow" if isinstance(workflow, str) else "spec"] = (
            workflow if isinstance(workflow, str) else dict(workflow)
        )
        if key is not None:
            body["key"] = key
        accepted = await self.call("POST", "/v1/executions", json=body)
        return str(accepted["id"])

    async def get(self, execution_id: str) -> dict[str, Any]:
        """The execution's record, with its steps."""
        record: dict[str, Any] = await self.call("GET", f"/v1/executions/{execution_id}")
        return record

    async def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` executions, newest first (without steps), following
        the listing's pages."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"status": status, "workflow": workflow}
        params = {k: v for k, v in params.items() if v is not None}
        while len(out) < limit:
            params["limit"] = min(1000, limit - len(out))
            page = await self.call("GET", "/v1/executions", params=params)
            out.extend(page["executions"])
            if not page.get("next"):
                break
            params["cursor"] = page["next"]
        return out

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        """Cancel it; its record."""
        record: dict[str, Any] = await self.call("POST", f"/v1/executions/{execution_id}/cancel")
        return record

    async def wait(self, execution_id: str) -> dict[str, Any]:
        """Wait for the execution to end; its record. Woken by its event
        stream, and reading the record again at least every 2 s (an end
        between two reads is never missed)."""
        import anyio

        while True:
            record = await self.get(execution_id)
            if record["status"] in TERMINAL_EXECUTION:
                return record
            with anyio.move_on_after(2.0):
                async with contextlib.aclosing(self.events(execution_id)) as events:
                    async for event in events:
                        if event.get("event") == "workflow.finished":
                            break

    async def result(self, execution_id: str) -> Any:
        """Wait for the execution to end and return its result;
        :class:`WorkflowFailed` when it did not succeed."""
        record = await self.wait(execution_id)
        if record["status"] != SUCCEEDED:
            error = record.get("error") or {}
            raise WorkflowFailed(
                f"execution {execution_id} {record['status']}"
                + (f": {error.get('message')}" if error.get("message") else ""),
                execution_id=execution_id,
                step=error.get("step"),
                error_type=error.get("type"),
            )
        return record.get("result")

    async def events(
        self, execution_id: str | None = None, *, last_event_id: int | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Lifecycle events (of one execution, until it ends; else of all),
        each a dict with ``event`` (its name) and ``id``."""
        path = f"/v1/executions/{execution_id}/events" if execution_id else "/v1/events"
        headers = {} if last_event_id is None else {"last-event-id": str(last_event_id)}
        async with self._http.stream("GET", path, headers=headers, timeout=None) as response:
            if response.status_code >= 400:
                _raise(response.status_code, await response.aread())
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value.strip()
                    continue
                if "data" in fields:
                    event = json.loads(fields["data"])
                    event.setdefault("event", fields.get("event"))
                    if "id" in fields:
                        event["id"] = int(fields["id"])
                    yield event
                fields = {}


def _raise(status: int, body: bytes) -> None:
    try:
        problem = json.loads(body)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    raise ApiError(status, str(problem.get("detail") or body[:200]), problem.get("path"))
