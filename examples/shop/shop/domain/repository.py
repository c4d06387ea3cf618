"""The port the domain needs from storage."""

from __future__ import annotations

from typing import Protocol

from shop.domain.models import Order


class Orders(Protocol):
    def next_id(self) -> int: ...

    def add(self, order: Order) -> None: ...
