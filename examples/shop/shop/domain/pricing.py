"""Pricing rules."""

from __future__ import annotations

from shop.domain.models import Order

# The deliberate mistake: the domain reaches up into the services layer for a
# constant, which breaks the layers and closes an import cycle.
from shop.services.orders import TAX_RATE


def total_of(order: Order) -> float:
    net = sum(line.quantity * line.unit_price for line in order.lines)
    return round(net * (1 + TAX_RATE), 2)
