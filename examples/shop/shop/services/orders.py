"""Use cases: placing an order."""

from __future__ import annotations

from shop.domain.models import Line, Order
from shop.domain.pricing import total_of
from shop.domain.repository import Orders

TAX_RATE = 0.2


class OrderService:
    def __init__(self, orders: Orders) -> None:
        self.orders = orders

    def place(self, customer: str, items: list[tuple[str, int, float]]) -> Order:
        lines = [Line(sku, qty, price) for sku, qty, price in items]
        order = Order(id=self.orders.next_id(), customer=customer, lines=lines)
        order.total = total_of(order)
        self.orders.add(order)
        return order
