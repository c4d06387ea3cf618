"""The Python client of ``corral serve``: the public path of :mod:`corral.server.client`.

Other services use ``from corral.client import Client``, as docs/api.md
shows; the client lives in ``corral.server`` beside the API it speaks to.
"""

from corral.server.client import Client

__all__ = ["Client"]
