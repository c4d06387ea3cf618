"""``corral serve``: the engine behind an HTTP API (see docs/api.md).

- :mod:`.app`: the routes (Litestar), bodies as msgspec Structs;
- :mod:`.problems`: errors as RFC 9457 problem documents;
- :mod:`.auth`: bearer tokens with scopes;
- :mod:`.httpserver`: HTTP/1.1 for the app, on Trio (httptools parses);
- :mod:`.lane`: well-formed submissions answered in front of Litestar;
- :mod:`.serve`: the server's lifetime (in the engine's Trio run; SIGTERM
  drains).
"""
