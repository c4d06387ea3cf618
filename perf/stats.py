"""Small measurement helpers shared by the case process and the runner."""

from __future__ import annotations

import math
import os
import resource
import statistics
from collections.abc import Sequence

__all__ = ["current_rss_mb", "median", "peak_rss_mb", "percentile"]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation.

    With 200 samples p99 is the 2nd largest, which is what a user would have
    seen on a bad start; interpolating would invent a value nobody observed.
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def peak_rss_mb() -> float:
    """This process's peak RSS so far (``ru_maxrss`` is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, Linux KiB.
    divisor = 1024 * 1024 if os.uname().sysname == "Darwin" else 1024
    return peak / divisor


def current_rss_mb() -> float:
    """This process's resident set size now, from /proc (psutil as a fallback)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        import psutil

        return float(psutil.Process().memory_info().rss) / (1024 * 1024)
