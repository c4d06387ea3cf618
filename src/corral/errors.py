"""Every error corral raises: the public path of :mod:`corral.core.errors`.

Plugin authors and embedders import errors from here (``from corral.errors
import SpecError``), as the docs show; the classes live in ``corral.core``,
the bottom layer, so that the engine, the stores and the workflow package
can use them without importing the public façade above them, and the
built-in plugins' own errors live in those plugins.
"""

from corral.core.errors import *  # noqa: F403
from corral.core.errors import __all__ as _core
from corral.plugins.builtin.architecture.errors import ArchitectureConfigError
from corral.plugins.builtin.core import CommandFailed
from corral.plugins.builtin.restructure.errors import RestructureError, RestructureRolledBack

# The plugins' own errors, where the public API has always offered them.
__all__ = [
    *_core,
    "ArchitectureConfigError",
    "CommandFailed",
    "RestructureError",
    "RestructureRolledBack",
]
