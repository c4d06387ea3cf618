"""Stores: where executions are tracked. ``open_store(url)`` picks a backend."""

from __future__ import annotations

from urllib.parse import urlsplit

from corral.errors import StoreError
from corral.storage.base import CacheEntry, Store
from corral.storage.memory import MemoryStore

__all__ = ["CacheEntry", "MemoryStore", "Store", "open_store"]

SCHEMES = ("memory",)


def open_store(url: str | Store) -> Store:
    """A store for ``url`` (not yet opened). ``memory://`` is the only backend so far."""
    if not isinstance(url, str):
        if isinstance(url, Store):
            return url
        raise StoreError(f"expected a store URL or a Store, got {type(url).__name__}")
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise StoreError(f"invalid store URL {url!r}: {exc}") from None
    if scheme == "memory":
        return MemoryStore(url)
    if not scheme:
        raise StoreError(f"store URL {url!r} has no scheme; expected one of: memory://")
    raise StoreError(f"unknown store scheme {scheme!r} in {url!r}; supported: memory://")
