"""Every error corral raises: the public path of :mod:`corral.core.errors`.

Plugin authors and embedders import errors from here (``from corral.errors
import SpecError``), as the docs show; the classes live in ``corral.core``,
the bottom layer, so that the engine, the stores and the workflow package
can use them without importing the public façade above them.
"""

from corral.core.errors import *  # noqa: F403
from corral.core.errors import __all__ as __all__
