"""Entities."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price: float


@dataclass
class Order:
    id: int
    customer: str
    lines: list[Line] = field(default_factory=list)
    total: float = 0.0
