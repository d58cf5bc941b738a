"""Registries: things that register by name once, and every list of names derived from them.

IMU protocols (:mod:`drivers.protocols`), inference backends (:mod:`evimae_stream.runtime.backends`)
and session readers (:mod:`evimae_stream.sessions`) each have one :class:`Registry`. A module in
the registry's package registers its entry when it is imported, and the registry imports every
module of its package the first time it is read, so adding an entry is adding one file: the URI
parser, the CLI choices, ``evimae-stream devices`` and the error texts all read the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from evimae_stream.errors import InputError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Name → entry, in registration order (the order the registering modules were imported).

    ``kind`` names the things in error texts ("serial protocol"); ``package`` is the dotted
    package whose modules are imported before the first read (None: nothing to discover).
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self._package = package
        self._entries: dict[str, T] = {}
        self._discovered = package is None

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (once: a second entry of the same name is a bug)."""
        if not name or name in self._entries:
            raise ValueError(f"{self.kind} {name!r}: empty or already registered")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a throw-away entry clean up with this)."""
        self._entries.pop(name, None)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")

    def __getitem__(self, name: str) -> T:
        self._discover()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in order."""
        return tuple(self)

    def choices(self, sep: str = "|") -> str:
        """The names joined for a usage or error text (``csv|witmotion``)."""
        return sep.join(self)

    def get_or_fail(self, name: str, where: str) -> T:
        """The entry, or one InputError line naming ``where``, the unknown name and the choices."""
        try:
            return self[name]
        except KeyError:
            raise InputError(
                f"{where}: unknown {self.kind} {name!r}; use one of {self.choices(', ')}"
            ) from None
