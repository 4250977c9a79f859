"""Plugins: modules outside the package that register methods, noise kinds or datasets.

A plugin is a Python module that calls a registry's ``register`` when imported (docs/plugins.md)::

    plugins: [my_pkg.my_methods, ./my_method.py]     # in a trial or study YAML (paths: relative to it)
    --plugin my_pkg.my_methods --plugin ./my_method.py  # on both CLIs (paths: relative to the cwd)

Installed packages register without being named, through the entry-point group ``noisyseg.plugins``
(``[project.entry-points."noisyseg.plugins"] my_methods = "my_pkg.my_methods"``; a ``module:function``
entry point is called with no arguments). A plugin that fails to import raises one ConfigError line
that names it and the cause; what it registered before failing is removed again.

In a Ray study the driver hands the plugins to every worker through the job's ``runtime_env``
(:func:`runtime_env`): a plugin file, or the top-level package of a plugin module that is not
installed, travels as ``py_modules`` (Ray packages it when the driver connects), and the names to
import travel in the environment variable ``NOISYSEG_PLUGINS``; the trainable imports them
(:func:`load_worker`) before it parses its config.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ConfigError

GROUP = "noisyseg.plugins"  # the entry-point group of installed plugins
ENV = "NOISYSEG_PLUGINS"  # comma-separated module names a Ray worker imports (set through runtime_env)

_loaded: dict[str, str] = {}  # resolved reference (absolute file path or module name) -> module name
_entry_points: set[str] | None = None  # entry points loaded in this process (None: not scanned yet)


def is_path(ref: str) -> bool:
    """A reference to a file (``./x.py``, ``dir/x.py``, ``/abs/x.py``) rather than a module name."""
    return ref.endswith(".py") or "/" in ref or os.sep in ref or ref.startswith(".")


def resolve(ref: Any, base: str | Path | None = None, where: str = "plugins") -> str:
    """The absolute path of a file reference (relative to ``base``, else the current folder), or the
    module name as given."""
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(f"{where}: got {ref!r}; expected a module name (my_pkg.my_methods) or a .py file")
    ref = ref.strip()
    if is_path(ref):
        path = Path(ref).expanduser()
        return str((Path(base) / path if base is not None and not path.is_absolute() else path).resolve())
    if not all(part.isidentifier() for part in ref.split(".")):
        raise ConfigError(f"{where}: got {ref!r}; a module name is dotted Python identifiers "
                          "(my_pkg.my_methods), a file ends in .py")
    return ref


def import_name(ref: str) -> str:
    """The module name a resolved reference is imported as (a file: its stem)."""
    return Path(ref).stem if is_path(ref) else ref


def _refs(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: got {value!r}; expected a list of module names or .py files, "
                          "e.g. [my_pkg.my_methods, ./my_method.py]")
    return list(value)


def load(refs: Any, base: str | Path | None = None, where: str = "plugins") -> list[str]:
    """Import the plugins ``refs`` (a list, a single reference or None) and the installed entry
    points; return the resolved references (what a written config names to load them again).
    Loading a plugin twice imports it once."""
    load_entry_points()
    out = []
    items = _refs(refs, where)
    for i, ref in enumerate(items):
        label = f"{where}[{i}]" if isinstance(refs, (list, tuple)) and not where.startswith("--") else where
        resolved = resolve(ref, base, label)
        if resolved not in _loaded:
            _loaded[resolved] = _import(resolved, f"{label}: plugin {ref!r}")
        out.append(resolved)
    return out


def loaded() -> list[str]:
    """The resolved references loaded in this process, in order (entry points not included)."""
    return list(_loaded)


def _registries() -> list:
    from .data import DATASETS
    from .methods import METHODS
    from .noise import NOISE_KINDS

    return [METHODS, NOISE_KINDS, DATASETS]


def _cause(exc: BaseException, file: str | None) -> str:
    """``Type: message (file:line)``, on one line: where in the plugin it failed."""
    if isinstance(exc, ConfigError):  # e.g. a refused registration: its own line says it all
        return str(exc)
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({Path(exc.filename).name}:{exc.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename
                  and not f.filename.startswith("<frozen")]
        mine = [f for f in frames if file is not None and Path(f.filename).resolve() == Path(file)] or frames[-1:]
        if mine:
            where = f" ({Path(mine[-1].filename).name}:{mine[-1].lineno})"
    text = " ".join(str(exc.msg if isinstance(exc, SyntaxError) else exc).split())
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


def _import(ref: str, label: str) -> str:
    """Import one resolved reference; undo its registrations and raise one line if it fails."""
    name = import_name(ref)
    saved = [(r, r.snapshot()) for r in _registries()]
    file = ref if is_path(ref) else None
    try:
        if file is None:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                    raise ConfigError(f"{label}: no module named {exc.name!r} (install it, add its folder to "
                                      "PYTHONPATH, or name its .py file)") from None
                raise
            return name
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"{label}: no such file {path}")
        if not name.isidentifier():
            raise ConfigError(f"{label}: {path.name} cannot be imported as a module; name the file with letters, "
                              "digits and '_' (my_method.py)")
        existing = sys.modules.get(name)
        if existing is not None:
            if getattr(existing, "__file__", None) and Path(existing.__file__).resolve() == path:
                return name
            raise ConfigError(f"{label}: the module name {name!r} is taken by "
                              f"{getattr(existing, '__file__', None) or 'a built-in module'}; rename the file")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return name
    except ConfigError as exc:
        for registry, snap in saved:
            registry.restore(snap)
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(label) else f"{label}: {msg}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module is one line
        for registry, snap in saved:
            registry.restore(snap)
        raise ConfigError(f"{label}: failed to import: {_cause(exc, file)}") from None


def load_entry_points(rescan: bool = False) -> list[str]:
    """Load the installed plugins of the entry-point group ``noisyseg.plugins`` (once per process;
    ``rescan``: look again, e.g. after installing one); returns their names."""
    global _entry_points
    if _entry_points is not None and not rescan:
        return sorted(_entry_points)
    _entry_points = _entry_points or set()
    for ep in importlib.metadata.entry_points(group=GROUP):
        key = f"{ep.name}={ep.value}"
        if key in _entry_points:
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None)
        label = f"plugin {ep.name!r} (entry point {GROUP} {ep.value!r}{f' of {dist}' if dist else ''})"
        saved = [(r, r.snapshot()) for r in _registries()]
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, ModuleType):
                obj()
        except Exception as exc:  # noqa: BLE001 - one line naming the entry point and the cause
            for registry, snap in saved:
                registry.restore(snap)
            raise ConfigError(f"{label}: failed to import: {_cause(exc, None)}") from None
        _entry_points.add(key)
    return sorted(_entry_points)


def load_worker() -> None:
    """In a Ray worker: import the plugins the driver named in ``NOISYSEG_PLUGINS`` (shipped by
    runtime_env py_modules, or installed) and the entry points, before a config is parsed."""
    load_entry_points()
    for name in filter(None, (n.strip() for n in os.environ.get(ENV, "").split(","))):
        if name not in _loaded.values():
            _loaded[name] = _import(name, f"{ENV}: plugin {name!r}")


def _installed(path: Path) -> bool:
    """``path`` lies in this interpreter's site-packages or standard library (there on every node,
    like the project itself)."""
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return any(path.is_relative_to(Path(r).resolve()) for r in roots if r)


def shipped_path(ref: str) -> str | None:
    """What a Ray worker needs to import ``ref``: the plugin file, or the top-level package (or
    single-file module) of a plugin module that is neither installed nor part of this project."""
    if is_path(ref):
        return ref
    top = ref.split(".")[0]
    if top in ("trainables", "study"):
        return None
    module = sys.modules.get(top)
    spec = module.__spec__ if module is not None else importlib.util.find_spec(top)
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    paths = list(spec.submodule_search_locations or [])
    target = Path(paths[0]) if len(paths) == 1 else Path(spec.origin) if not paths else None
    if target is None or _installed(target.resolve()):
        return None
    return str(target.resolve())


def runtime_env(refs: list[str]) -> dict | None:
    """The Ray ``runtime_env`` that brings the resolved plugin references ``refs`` to every worker
    (None without plugins): ``py_modules`` (the files and packages to ship) and ``NOISYSEG_PLUGINS``."""
    if not refs:
        return None
    shipped = [p for p in (shipped_path(r) for r in refs) if p]
    env: dict[str, Any] = {"env_vars": {ENV: ",".join(dict.fromkeys(import_name(r) for r in refs))}}
    if shipped:
        env["py_modules"] = list(dict.fromkeys(shipped))
    return env


def describe(refs: list[str]) -> str:
    """One line for the driver's log: the plugins and what Ray ships of them."""
    shipped = [Path(p).name for p in (shipped_path(r) for r in refs) if p]
    names = ", ".join(import_name(r) for r in refs)
    return f"{len(refs)} plugin(s) ({names})" + (f", {len(shipped)} shipped to the workers by Ray "
                                                 f"(runtime_env py_modules: {', '.join(shipped)})" if shipped else "")


__all__ = ["ENV", "GROUP", "describe", "import_name", "is_path", "load", "load_entry_points", "load_worker",
           "loaded", "resolve", "runtime_env", "shipped_path"]
