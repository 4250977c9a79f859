"""Output locations: say in one line why a result folder cannot be written, before anything is."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def check_writable_dir(path: str | Path, label: str) -> None:
    """Raise UserError unless ``path`` is (or can be created as) a folder this process may write.

    ``label`` names the option the path came from (``--out``, ``--storage``, ``storage.path``).
    Nothing is created: the nearest existing ancestor must be a folder we may write into."""
    path = Path(path).expanduser()
    node = path.absolute()
    while not os.path.lexists(node) and node != node.parent:
        node = node.parent
    if os.path.islink(node) and not node.exists():
        raise UserError(f"{label} {path}: {node} is a broken symbolic link")
    if not node.is_dir():
        where = "it" if node == path.absolute() else str(node)
        raise UserError(f"{label} {path}: {where} is a file, not a folder; choose another location")
    if not os.access(node, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(node) else "no permission to write"
        raise UserError(f"{label} {path}: {reason} in {node}; choose another location")


def make_dir(path: str | Path, label: str) -> None:
    """``mkdir -p`` with the failure as one line naming the option."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{label} {path}: cannot create the folder ({exc.strerror or exc})") from None


def _read_only(node: Path) -> bool:
    try:
        return bool(os.statvfs(node).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as dead; another user's process
    as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
