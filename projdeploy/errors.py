"""Typed user-facing errors.

Every error a user can cause (bad task name, malformed file, missing path)
raises a subclass of :class:`ProjdeployError`. The CLI prints its message
without a traceback and exits with ``exit_code``.
"""

from __future__ import annotations


class ProjdeployError(Exception):
    """A user error: the message says what is wrong and what is allowed."""

    exit_code = 2


class UnknownNameError(ProjdeployError, KeyError):
    """An unknown registry name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ConfigError(ProjdeployError, ValueError):
    """A malformed file or field: names the file, the field and what is allowed."""

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: field {field!r}: {problem}")


class DataError(ProjdeployError):
    """Missing or unusable data (a path that does not exist, an empty split)."""


class CheckpointError(ProjdeployError):
    """A checkpoint that is missing, of the wrong kind, or incompatible."""
