"""``corral serve``: the engine behind an HTTP API (see docs/api.md).

- :mod:`.app`: the routes (Litestar), bodies as msgspec Structs;
- :mod:`.problems`: errors as RFC 9457 problem documents;
- :mod:`.auth`: bearer tokens with scopes;
- :mod:`.serve`: the server's lifetime (Hypercorn's Trio worker, in the
  engine's Trio run; SIGTERM drains).
"""
