"""Build typed dataclasses from plain dicts (parsed YAML), with errors that name the dotted key.

One small mechanism serves every config object in the project: unknown keys are rejected with the
closest valid spelling, values are checked against the field's annotation, and each dataclass may
add range checks in ``validate(self, path)``.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from .errors import ConfigError

# Decimal float spellings YAML 1.1 leaves as strings (1e-4, 5E3, +1.e-2): accepted for float fields.
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def suggest(key: str, valid: typing.Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close."""
    key, valid = str(key), [str(v) for v in valid]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:  # a valid key the typo starts with, or that starts with the typo (lr_rate -> lr)
        close = sorted((v for v in valid if min(len(v), len(key)) >= 2 and (key.startswith(v) or v.startswith(key))),
                       key=lambda v: -len(v))[:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against annotation ``tp`` and return it converted (ints widen to floats,
    lists become tuples where the field is a tuple, mappings become dataclasses)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{path}: got {value!r}; allowed: {_describe(tp)}{suggest(value, map(str, get_args(tp)))}")
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{path}: got {value!r}; expected {_describe(tp)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: got {value!r}; expected {_describe(tp)}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: got {len(value)} values; expected exactly {len(args)}")
            return tuple(coerce(v, a, join(path, i)) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [coerce(v, item, join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: got {value!r}; expected a mapping")
        kt, vt = get_args(tp) or (Any, Any)
        return {coerce(k, kt, join(path, str(k))): coerce(v, vt, join(path, str(k))) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: got {value!r}; expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: got {value!r}; expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        raise ConfigError(f"{path}: got {value!r}; expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: got {value!r}; expected a string")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{path}: got {value!r}; expected {_describe(tp)}")


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Instantiate dataclass ``cls`` from mapping ``data``; errors name ``path.key``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: got {data!r}; expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{join(path, key)}: unknown key{suggest(key, fields)}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = coerce(data[name], hints[name], join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{join(path, name)}: required key is missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def to_dict(obj: Any) -> Any:
    """Plain YAML-safe containers (tuples become lists) from a dataclass tree."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def check_range(path: str, value: float | int | None, lo=None, hi=None, *, lo_open=False, hi_open=False) -> None:
    """Raise ConfigError unless lo <= value <= hi (open ends when asked)."""
    if value is None:
        return
    bad = value != value or (lo is not None and (value <= lo if lo_open else value < lo)) or \
          (hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ConfigError(f"{path}: got {value!r}; allowed range {left}{lo_s}, {hi_s}{right}")
