"""corral's data (specs, records, events): the public path of :mod:`corral.core.model`.

Plugin authors import events and records from here (``from corral.model
import StepProgress``), as the docs show; the Structs live in ``corral.core``,
the bottom layer, so that every layer above can use them without importing
the public façade.
"""

from corral.core.model import *  # noqa: F403
from corral.core.model import __all__ as __all__
