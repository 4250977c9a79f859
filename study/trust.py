"""An experiment folder is trusted like code: ``--resume`` makes Ray unpickle ``tuner.pkl``, the
searcher state and its experiment state from it, and a hostile pickle runs code. Ray cannot restore
without them, so the boundary is guarded instead: the folder and everything in it that Ray or the
study reads back must belong to the user running the study and be writable by nobody else.
(``wandb/`` and ``report/`` are only written, never read back, and are not checked.)
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from trainables.errors import UserError

SKIP = ("wandb", "report")


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _problem(path: Path, me: int) -> str | None:
    try:
        st = os.stat(path)  # follows links: what would be read
    except OSError:
        return None  # a broken link: nothing that can be read
    if st.st_uid != me:
        return f"owned by {_owner(st.st_uid)}, not by you ({_owner(me)})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = " and ".join(w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit)
        return f"writable by {who} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def untrusted(exp_dir: str | Path) -> tuple[Path, str] | None:
    """The first path of the experiment that another user could have written, with why."""
    exp_dir = Path(exp_dir)
    me = os.getuid()
    problem = _problem(exp_dir, me)
    if problem:
        return exp_dir, problem
    for root, dirs, files in os.walk(exp_dir):
        if Path(root) == exp_dir:
            dirs[:] = [d for d in dirs if d not in SKIP]
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = Path(root, name)
            problem = _problem(path, me)
            if problem:
                return path, problem
    return None


def check_trusted(exp_dir: str | Path) -> None:
    """Raise UserError (one line) unless the experiment folder may be resumed safely."""
    found = untrusted(exp_dir)
    if found is None:
        return
    path, problem = found
    fix = "chmod -R go-w" if "writable" in problem else "chown -R $(id -un)"
    raise UserError(f"--resume: refusing {path}: {problem}; resuming unpickles files of this experiment, so it is "
                    f"trusted like code; check its contents, then run {fix} {exp_dir}")
