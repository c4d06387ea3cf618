"""``corral worker`` from Python: the public path of :func:`corral.server.worker.serve`.

Operators embed a worker with ``from corral.worker import serve``, as
docs/deployment.md shows; it lives in ``corral.server`` with the other
long-running processes (``corral serve``).
"""

from corral.server.worker import serve

__all__ = ["serve"]
