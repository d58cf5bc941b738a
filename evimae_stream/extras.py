"""Optional dependencies: import one, or fail with one line naming the extra that installs it.

The Lab Streaming Layer parts (``lsl:`` sources, ``--lsl`` outlets, XDF) need ``pylsl`` and
``pyxdf`` from the ``[lsl]`` extra. pylsl loads the native liblsl when imported: its Linux x86-64
wheel bundles it; elsewhere (aarch64, e.g. a Jetson) ``PYLSL_LIB`` must name a liblsl build.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from evimae_stream.errors import InputError

_INSTALL = "pip install 'evimae-stream[lsl]'"


def require_lsl(where: str) -> ModuleType:
    """``pylsl``, or InputError naming ``where`` (the option or URI that needs it)."""
    try:
        return importlib.import_module("pylsl")
    except ImportError:
        raise InputError(f"{where}: needs pylsl, from the [lsl] extra: {_INSTALL}") from None
    except RuntimeError as exc:  # pylsl is there, its native library is not
        raise InputError(
            f"{where}: pylsl cannot load liblsl ({str(exc).splitlines()[0]}); set PYLSL_LIB to "
            "a liblsl build (see the README's Lab Streaming Layer section)"
        ) from None


def require_xdf(where: str) -> ModuleType:
    """``pyxdf``, or InputError naming ``where``."""
    try:
        return importlib.import_module("pyxdf")
    except ImportError:
        raise InputError(f"{where}: needs pyxdf, from the [lsl] extra: {_INSTALL}") from None
