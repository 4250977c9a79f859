"""The YAML files shipped with noisyseg, by name: the study spaces and the trial examples.

A checkout holds them in ``search_spaces/`` and ``examples/``; an installed wheel carries the same
files as package data in ``study/spaces/`` and ``trainables/examples/`` (pyproject.toml maps the
folders, so there is one copy). The CLIs take a path as before, or a shipped name: a path that
exists is always read as given; an argument that does not exist and looks like a name (no ``.yaml``,
e.g. ``adele`` or ``paper/adele_levels``) is the shipped file of that name::

    python -m study.run adele --smoke          # = search_spaces/adele.yaml of this installation
    python -m trainables.run tiny              # = examples/tiny.yaml
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError
from .typed import suggest

_ROOT = Path(__file__).resolve().parents[1]  # the folder holding trainables/ and study/
# kind -> (folder inside the installed packages, folder of a checkout, the CLI that takes the name)
_KINDS = {
    "study": ("study/spaces", "search_spaces", "python -m study.run"),
    "trial": ("trainables/examples", "examples", "python -m trainables.run"),
}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?")


def folder(kind: str) -> Path:
    """Where the shipped files of ``kind`` ('study' or 'trial') are: the package data of an
    installed wheel, else the checkout's folder."""
    installed, checkout, _ = _KINDS[kind]
    return _ROOT / installed if (_ROOT / installed).is_dir() else _ROOT / checkout


def names(kind: str) -> list[str]:
    """The shipped names of ``kind``: file stems, a subfolder's as ``sub/stem`` (``paper/pu_drop30``)."""
    root = folder(kind)
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def _listing(known: list[str], root: Path) -> str:
    """The top-level names, then each subfolder as one entry: 'adele, ..., paper/NAME (14 in DIR/paper)'."""
    top = [n for n in known if "/" not in n]
    subs: dict[str, int] = {}
    for n in known:
        if "/" in n:
            subs[n.split("/")[0]] = subs.get(n.split("/")[0], 0) + 1
    return ", ".join(top + [f"{s}/NAME ({k} in {root / s})" for s, k in sorted(subs.items())])


def resolve(arg: str, kind: str) -> str:
    """The file to read for the CLI argument ``arg``: ``arg`` itself when it exists (a path wins over a
    name), else the shipped file it names. Anything else: ``arg`` when it is a path (the reader's
    'no such config file' follows), or one line naming the shipped names for a name that is none."""
    if Path(arg).exists():
        return arg
    name = arg.removesuffix("/")
    if _NAME.fullmatch(name) and not name.endswith((".yaml", ".yml")):
        path = folder(kind) / f"{name}.yaml"
        if path.is_file():
            return str(path)
        known = names(kind)
        raise ConfigError(f"{arg}: no such config file, and no shipped {kind} of that name{suggest(name, known)}; "
                          f"shipped: {_listing(known, folder(kind))} (or give a path to a YAML file)")
    if Path(arg).suffix in (".yaml", ".yml"):  # a checkout's path (search_spaces/adele.yaml) used elsewhere
        given = "/" + Path(arg).with_suffix("").as_posix()
        same = [n for n in names(kind) if given.endswith("/" + n)]
        if same:
            raise ConfigError(f"{arg}: no such config file; the shipped {kind} of that name runs with "
                              f"{_KINDS[kind][2]} {max(same, key=len)}")
    return arg
