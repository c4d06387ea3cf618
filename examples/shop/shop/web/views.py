"""HTTP-ish views: turn requests into service calls."""

from __future__ import annotations

from shop.adapters.memory import MemoryOrders
from shop.services.orders import OrderService


def create_order(request: dict[str, object]) -> dict[str, object]:
    service = OrderService(MemoryOrders())
    order = service.place(str(request["customer"]), list(request["items"]))  # type: ignore[arg-type]
    return {"id": order.id, "total": order.total}
