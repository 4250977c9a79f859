"""One registry type for every named component of a trial: methods, noise kinds, datasets.

A :class:`Registry` maps a name (the YAML value of ``method.name``, ``noise[i].kind``,
``dataset.name``) to an entry (a Method class, a NoiseKind, a DatasetEntry) whose parameters
dataclass validates the keys beside the name. Config parsing, ``--list``, the dry run and the
study's combination checks all read a registry through the same few calls (``get``, ``params``,
``accepted_keys``, iteration); an unknown name raises the one-line ConfigError with the YAML path,
the closest spelling and what is allowed, e.g.
``method.name: unknown method 'adel' (did you mean 'adele'?); allowed: ce, adele, ...``.

Registrations come from inside the package (one line per entry in the registry's dict literal) and
from outside it (plugins, ``docs/plugins.md``)::

    from trainables.methods import METHODS, Method

    @METHODS.register("my_ce")          # or METHODS.register("my_ce", MyCE)
    class MyCE(Method): ...

A name is registered once: a second registration of it is refused with a one-line error naming who
registered it first.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from .errors import ConfigError
from .typed import suggest

T = TypeVar("T")

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def _origin(obj: Any) -> str:
    """The module that defines ``obj`` (a NamedTuple entry: the module of its parameters or builder)."""
    items = [v for v in obj if v is not None] if isinstance(obj, tuple) else [obj]
    return next((m for m in (getattr(v, "__module__", None) for v in items) if m), "?")


class Registry(Mapping[str, T], Generic[T]):
    """Name -> entry, with the entry's parameters dataclass and the lookup error.

    ``what``: the entry's noun in messages ("method"); ``key``: the YAML key that names an entry
    ("name" / "kind"); ``path``: that key's YAML path when no other is given ("method.name");
    ``params``: the entry's parameters dataclass (or None: no parameters); ``check``: raises
    TypeError when an object cannot be an entry (a wrong registration fails at once, not in a trial).
    A Registry is a read-only Mapping (``REG[name]``, ``name in REG``, ``REG.items()``); entries
    are added with :meth:`register`.
    """

    def __init__(self, what: str, *, key: str, path: str, params: Callable[[T], type | None],
                 check: Callable[[str, T], None] | None = None, entries: Mapping[str, T] | None = None):
        self.what, self.key, self.path = what, key, path
        self._params, self._check = params, check
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    # -- Mapping --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what}: {', '.join(self._entries)})"

    # -- registration ---------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None) -> Any:
        """Add ``obj`` under ``name`` and return it; without ``obj`` a decorator that does so.
        Refuses a name given twice and an object that cannot be an entry (one-line ConfigError)."""
        if obj is None:
            return lambda target: self.register(name, target)
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"register {self.what} {name!r}: a name is letters, digits, '_' or '-', starting "
                              "with a letter or '_'")
        if name in self._entries:
            raise ConfigError(f"register {self.what} {name!r}: already registered (by {self._origins[name]}); "
                              f"choose another name")
        if self._check is not None:
            try:
                self._check(name, obj)
            except TypeError as exc:
                raise ConfigError(f"register {self.what} {name!r}: {exc}") from None
        params = self._params(obj)
        if params is not None and not dataclasses.is_dataclass(params):
            raise ConfigError(f"register {self.what} {name!r}: its parameters {params!r} are not a dataclass")
        self._entries[name] = obj
        self._origins[name] = _origin(obj)
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plugin that failed half-way, or a test cleaning up)."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    # -- lookup -----------------------------------------------------------------------------------
    def error(self, name: Any, path: str | None = None) -> ConfigError:
        """The one-line error for an unknown ``name`` at YAML ``path``: hint and allowed names."""
        return ConfigError(f"{path or self.path}: unknown {self.what} {name!r}{suggest(name, self._entries)}; "
                           f"allowed: {', '.join(self._entries)}")

    def get(self, name: Any, path: str | None = None) -> T:  # type: ignore[override]
        """The entry called ``name``; an unknown name raises :meth:`error` (Mapping.get's default
        is not offered: every caller wants the error)."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(name, path) from None

    def params(self, name: Any, path: str | None = None) -> type | None:
        """The parameters dataclass of the entry ``name`` (None: it takes none)."""
        return self._params(self.get(name, path))

    def accepted_keys(self, name: Any) -> set[str] | None:
        """The parameter keys of ``name`` (besides the naming key); None for an unknown name."""
        if name not in self:
            return None
        params = self._params(self._entries[name])
        return {f.name for f in dataclasses.fields(params)} if params is not None else set()

    def origin(self, name: str) -> str:
        """The module that registered ``name``'s entry."""
        return self._origins[name]

    def builtin(self, name: str) -> bool:
        """True for an entry defined inside the ``trainables`` package."""
        return self._origins.get(name, "").split(".")[0] == "trainables"

    def snapshot(self) -> dict[str, T]:
        """The entries now (restore with :meth:`restore`): undo a plugin that failed half-way."""
        return dict(self._entries)

    def restore(self, snapshot: dict[str, T]) -> None:
        for name in [n for n in self._entries if n not in snapshot]:
            self.unregister(name)


__all__ = ["Registry"]
