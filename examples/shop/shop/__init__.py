"""A tiny shop: web -> services -> domain, with storage in adapters."""
