"""Telling a real Ctrl-C from a handler that raises ``KeyboardInterrupt``.

A step's failure stays that step's failure, whatever the handler raises
(``SystemExit``, ``KeyboardInterrupt``, a bare ``BaseException``); but a real
Ctrl-C must still stop the engine. Trio delivers SIGINT by raising
``KeyboardInterrupt`` in whatever code runs when it arrives, handler code
included, so the two look alike at the step. This module counts the SIGINTs
the process receives: a ``KeyboardInterrupt`` that comes out of a step while
the count moved is the user's, any other is the handler's.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["count", "watch"]

_count = 0
_installs = 0
_wrapper: Any = None
_original: Any = None


def count() -> int:
    """SIGINTs received since the first :func:`watch`."""
    return _count


def watch() -> Callable[[], None]:
    """Count SIGINTs while an engine is open (from the main thread; elsewhere
    signals cannot be handled and nothing is done). The handler in place
    (Trio's, inside ``trio.run``) is called as before. Returns the undo."""
    global _installs, _wrapper, _original
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    if _installs == 0:
        original = signal.getsignal(signal.SIGINT)
        if not callable(original):  # SIG_IGN / SIG_DFL / None: no Trio handler to wrap
            return _nothing

        def counting(signum: int, frame: FrameType | None) -> Any:
            global _count
            _count += 1
            return original(signum, frame)

        try:
            signal.signal(signal.SIGINT, counting)
        except (ValueError, OSError):
            return _nothing
        _wrapper, _original = counting, original
    _installs += 1
    return _unwatch


def _unwatch() -> None:
    global _installs, _wrapper, _original
    _installs -= 1
    if _installs == 0:
        # Put the original back unless someone replaced ours meanwhile.
        if signal.getsignal(signal.SIGINT) is _wrapper:
            signal.signal(signal.SIGINT, _original)
        _wrapper = _original = None


def _nothing() -> None:
    return None
