"""The architecture plugin's error (re-exported as ``corral.ArchitectureConfigError``
and ``corral.errors.ArchitectureConfigError``, where the public API promised it)."""

from __future__ import annotations

from corral.core.errors import CorralError

__all__ = ["ArchitectureConfigError"]


class ArchitectureConfigError(CorralError):
    """An architecture configuration (``[tool.corral.architecture]`` in
    ``pyproject.toml``, or an import-linter configuration) is invalid.

    ``file`` is the configuration file and ``key`` the offending entry
    (``tool.corral.architecture.layers[2]``), so the message says where to fix it.
    """

    def __init__(self, message: str, *, file: str, key: str | None = None) -> None:
        self.message = message
        self.file = file
        self.key = key
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")
