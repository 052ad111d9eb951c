"""Plug-ins found by name: the one registry shape behind every layer's neuron and readout kinds.

Each plug-in package (``golden/kinds``, ``golden/readouts``, ``quant/kinds``, ``quant/readouts``,
``hdl/kinds``, ``hdl/readouts``) holds one module per kind; importing the package imports every
module in it, and each module registers its kind. A new kind is therefore one new file per package,
with no list to edit.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins in registration order.

    ``what`` names an entry in messages ("neuron kind"); ``unknown`` is the refusal of an unknown
    name, a format string with ``{name!r}`` and ``{known}``; ``error`` is the exception it raises.
    """

    def __init__(self, what: str, *, error: type[Exception], unknown: str) -> None:
        self.what = what
        self._error = error
        self._unknown = unknown
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` under ``entry.name``; a name may be registered once."""
        name = getattr(entry, "name", None)
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ValueError(f"a {self.what} needs a plain name, got {name!r}")
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def values(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name is refused with the known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self._error(self._unknown.format(name=name, known=", ".join(self.names()))) from None

    def load_package(self, package: str, path: Iterable[str], *, first: tuple[str, ...] = ()) -> None:
        """Import every module of ``package`` (each registers its kind); ``first`` are imported
        first, in that order, which is the order of CLI choices and of random draws."""
        found = sorted(info.name for info in pkgutil.iter_modules(list(path)))
        for name in [n for n in first if n in found] + [n for n in found if n not in first]:
            importlib.import_module(f"{package}.{name}")
