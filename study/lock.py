"""One driver per experiment: an advisory lock file in the experiment folder.

``<experiment>/.lock`` is locked with ``flock`` for as long as a driver runs (the kernel releases it
when the process ends, however it ends) and holds a JSON record of its holder: pid, host, start
time and the session folder of the local Ray it started. A second driver is refused with one line
naming the holder; the next driver after a crash reads the dead holder's record to stop the Ray
processes it left behind (:mod:`study.leftovers`).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from trainables.errors import UserError
from trainables.paths import make_dir

LOCK_FILE = ".lock"


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        record = json.loads(data.decode() or "{}")
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


class ExperimentLock:
    """Held by the running driver; ``previous`` is the record of the last driver that held it."""

    def __init__(self, path: Path, fd: int, previous: dict):
        self.path, self.fd, self.previous = path, fd, previous
        self.record: dict = {}

    @classmethod
    def acquire(cls, exp_dir: str | Path) -> "ExperimentLock":
        exp_dir = Path(exp_dir)
        make_dir(exp_dir, "experiment folder")
        path = exp_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"{path}: cannot open the experiment's lock file ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            since = holder.get("started")
            when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
            raise UserError(f"experiment {exp_dir} is in use by another driver (pid {holder.get('pid', '?')} on "
                            f"host {holder.get('host', '?')}{when}); wait for it to end or stop it, then --resume"
                            ) from None
        lock = cls(path, fd, _read(fd))
        lock.update(pid=os.getpid(), host=socket.gethostname(), started=time.time(), ray_session=None)
        return lock

    def update(self, **fields) -> None:
        """Rewrite the holder record with ``fields`` added."""
        self.record.update(fields)
        data = (json.dumps(self.record) + "\n").encode()
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, data)
        os.fsync(self.fd)

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
