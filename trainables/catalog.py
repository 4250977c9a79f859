"""``--list [methods|noise|datasets|archs|encoders]`` and ``--version`` of the CLIs.

Everything listed comes from the registries themselves (the ``Params`` / ``Options`` dataclasses of
methods, noise kinds and datasets; smp's architectures and encoders), so the list cannot drift from
what the config parser accepts. A parameter's note is the comment beside its field in the source.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any, Callable, Iterator

from .typed import _describe
from .errors import UserError

WHAT = ("methods", "noise", "datasets", "archs", "encoders")
_COMMENT = re.compile(r"^\s*(\w+)\s*:[^#]*#\s*(.+)$")


def version() -> str:
    """The installed version of the noisyseg distribution."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("noisyseg")
    except PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "unknown (not installed; pip install -e .)"


def _notes(cls: type) -> dict[str, str]:
    """Field name -> the comment beside it in ``cls``'s source (empty when the source is missing)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out = {}
    for line in source.splitlines():
        m = _COMMENT.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2).strip()
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "(required)"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def dataclass_params(cls: type) -> list[tuple[str, str, str, str]]:
    """(key, default, type, note) for every field of a Params/Options dataclass."""
    if cls is None or not dataclasses.is_dataclass(cls):
        return []
    hints = typing.get_type_hints(cls)
    notes = _notes(cls)
    return [(f.name, _show(_default(f)), _describe(hints[f.name]), notes.get(f.name, ""))
            for f in dataclasses.fields(cls) if f.init]


def _signature_params(cls: type, skip: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    out = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in skip or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = "(required)" if p.default is p.empty else _show(p.default)
        kind = "" if p.annotation is p.empty else _describe(p.annotation) if not isinstance(p.annotation, str) \
            else p.annotation
        out.append((name, default, kind, ""))
    return out


# --list name -> the trial section whose registry it shows (trainables.config.components)
REGISTRY_LISTS = {"methods": "method", "noise": "noise", "datasets": "dataset"}


def _entries(what: str) -> Iterator[tuple[str, list[tuple[str, str, str, str]]]]:
    if what in REGISTRY_LISTS:
        from .config import DatasetConfig, components

        registry, common = components()[REGISTRY_LISTS[what]]
        shared = [p for p in dataclass_params(DatasetConfig) if p[0] in common]  # keys beside every name
        for name in registry:
            yield _label(registry, name), shared + dataclass_params(registry.params(name))
    elif what == "archs":
        from .models import architectures

        skip = ("self", "encoder_name", "encoder_weights", "in_channels", "classes")
        for name, cls in architectures().items():
            yield name, _signature_params(cls, skip)
    elif what == "encoders":
        from .models import encoders

        for name in encoders():
            yield name, []


def _label(registry, name: str) -> str:
    """An entry's name as listed; one registered from outside the package names its module."""
    return name if registry.builtin(name) else f"{name}  (plugin {registry.origin(name)})"


HEADERS: dict[str, str] = {
    "methods": "methods (method.name; parameters flat beside it: method.<key>)",
    "noise": "noise kinds (noise: [{kind: NAME, <key>: value}, ...], applied in order)",
    "datasets": "datasets (dataset.name; keys flat beside it: dataset.<key>)",
    "archs": "architectures (model.arch; keyword arguments under model.kwargs)",
    "encoders": "encoders (model.encoder; no weights are downloaded unless model.allow_download)",
}


def render(what: str, detail: bool = True) -> str:
    """The text of ``--list WHAT``; ``detail``: every entry's parameters and defaults."""
    if what not in WHAT:
        from .typed import suggest

        raise UserError(f"--list: unknown list {what!r}{suggest(what, WHAT)}; allowed: {', '.join(WHAT)}")
    lines = [HEADERS[what] + ":"]
    entries = list(_entries(what))
    if what == "encoders":
        names = [n for n, _ in entries]
        width = max(len(n) for n in names) + 2
        per_row = max(1, 100 // width)
        for i in range(0, len(names), per_row):
            lines.append("  " + "".join(n.ljust(width) for n in names[i:i + per_row]).rstrip())
        lines.append("  tu-<any timm model>   e.g. tu-convnext_tiny, tu-efficientnet_b0 "
                     "(python -c \"import timm; print(timm.list_models())\")")
        return "\n".join(lines)
    for name, params in entries:
        if not detail or not params:
            lines.append(f"  {name}" + ("" if detail else f"  ({len(params)} parameters)" if params else "")
                         + ("  (no parameters)" if detail and not params else ""))
            continue
        lines.append(f"  {name}")
        key_w = max(len(p[0]) for p in params)
        val_w = min(28, max(len(p[1]) for p in params))
        for key, default, kind, note in params:
            text = f"    {key.ljust(key_w)}  {default.ljust(val_w)}  {kind}"
            lines.append(text + (f"  # {note}" if note else ""))
    return "\n".join(lines)


def render_all() -> str:
    """``--list`` without a name: every list, entries by name only (encoders summarised)."""
    parts = []
    for what in WHAT:
        if what == "encoders":
            from .models import encoders

            parts.append(f"{HEADERS[what]}: {len(encoders())} smp encoders and tu-<any timm model> "
                         "(--list encoders)")
            continue
        names = [n for n, _ in _entries(what)]
        parts.append(f"{HEADERS[what]}:\n  " + ", ".join(names) + f"\n  (details: --list {what})")
    return "\n\n".join(parts)


def list_command(what: str | None, out: Callable[[str], Any] = print) -> int:
    """Print ``--list [WHAT]``; the CLIs' exit status (0)."""
    out(render_all() if what in (None, "all") else render(what))
    return 0
