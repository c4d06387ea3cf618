"""Storage adapters implementing the domain's ``Orders`` port."""

from __future__ import annotations

import itertools

from shop.domain.models import Order


class MemoryOrders:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.saved: dict[int, Order] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, order: Order) -> None:
        self.saved[order.id] = order
