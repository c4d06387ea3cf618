"""The analysis's defaults, in a module light enough for the plugin to
import when it registers (the analysers import them from here too)."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_FILE_BYTES"]

#: Files larger than this are listed as not analysed, never read whole.
DEFAULT_MAX_FILE_BYTES = 2_000_000
