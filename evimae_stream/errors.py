"""Errors a user can act on.

Every expected failure (bad file, bad port, bad URI, mismatched model) raises a subclass of
:class:`EvimaeError` whose message is one line that names the file, port or field, says what is
wrong and what to do. The CLI prints that line and exits with :attr:`EvimaeError.exit_code`,
never a traceback.
"""

from __future__ import annotations


class EvimaeError(Exception):
    """Base class for failures that are reported to the user as one line."""

    exit_code = 1


class InputError(EvimaeError):
    """A usage or input problem: bad argument, missing or malformed file. Exit code 2."""

    exit_code = 2


class FormatError(InputError):
    """A file exists but its content is not what the reader expects (names file, row, field)."""


class ArtifactError(InputError):
    """A model artifact or checkpoint is missing, corrupt or does not match its description."""


class DeviceError(EvimaeError):
    """A sensor or camera could not be opened or stopped answering."""

    exit_code = 2
