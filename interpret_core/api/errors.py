"""Errors that the CLI turns into one line plus a hint.

Every error a user can cause derives from :class:`InterpError`. The CLI prints
``error: <message>`` and ``hint: <hint>`` on stderr and exits with
``exit_code``; ``INTERP_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

#: Exit codes shared by every command.
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class InterpError(Exception):
    """A known, user-facing error: a message that names the culprit, and a hint."""

    exit_code: int = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # the hint travels with the message outside the CLI too
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def __reduce__(self):  # raised in a worker process, it reaches the command with its hint
        return (type(self), (self.message, self.hint))


class UsageError(InterpError):
    """Bad arguments or options: exit code 2."""

    exit_code = EXIT_USAGE


class PluginError(InterpError):
    """A plugin failed to load or register, or two plugins claim one name."""


class UnknownNameError(UsageError, KeyError):
    """A plugin name that no installed plugin registers."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return InterpError.__str__(self)


class DataError(InterpError):
    """A data set on disk is missing, not what it claims to be, or malformed."""


class WeightsError(InterpError):
    """Weights or a model card that cannot be loaded or do not match the model."""


class CapabilityError(UsageError):
    """A plugin was asked for something its capability flags say it cannot do."""


class CacheHomeError(InterpError):
    """No folder for interp's caches can be found (no INTERP_HOME, XDG_CACHE_HOME or home directory)."""


class OutputLockedError(InterpError):
    """Another interp process is writing the same output folder (exit code 1: retry later)."""
