"""The restructure plugin's errors (re-exported as ``corral.errors.RestructureError``
and ``corral.errors.RestructureRolledBack``, where the public API promised them)."""

from __future__ import annotations

from corral.core.errors import CorralError, UsageError

__all__ = ["RestructureError", "RestructureRolledBack"]


class RestructureError(UsageError):
    """A restructuring plan that cannot be carried out (an unknown module, a
    target that exists, a move into itself, two moves to one target, a name
    that is not an identifier), or a file it must rewrite that does not
    parse. Raised before anything is written."""


class RestructureRolledBack(CorralError):
    """A restructuring was carried out, failed its validation, and was rolled
    back: the tree is as it was (the message says which check failed)."""
