"""User-facing errors.

Anything the user can fix (a YAML key, a data file, a name) raises :class:`UserError`; the CLIs print
its message as one line and exit with status 2. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by input the user controls; the message names the key or file at fault."""


class ConfigError(UserError, ValueError):
    """A config value is missing, unknown or out of range. Message: ``key: what is wrong; allowed``."""


class DataError(UserError):
    """A dataset file or folder is missing, unreadable or inconsistent. Message names the file."""


class DiskFullError(Exception):
    """A write of the run failed for lack of space. The CLI prints one line and exits with status 4;
    what was written before (earlier checkpoints, their metrics) stays intact and ``--resume`` continues."""

    def __init__(self, folder, free_bytes: int | None):
        self.folder, self.free_bytes = folder, free_bytes
        free = "unknown" if free_bytes is None else f"{free_bytes / 2**20:.1f} MiB"
        super().__init__(f"disk full writing the run in {folder} ({free} free); free space, then --resume")

    def __reduce__(self):  # Ray hands a trial's error to the driver pickled
        return type(self), (self.folder, self.free_bytes)


def is_disk_full(exc: BaseException) -> bool:
    """``exc`` (or what caused it) is a failed write for lack of space: ENOSPC/EDQUOT, or torch.save's
    ``RuntimeError: [enforce fail at inline_container.cc] ... unexpected pos`` / ``file write failed``."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, RuntimeError) and any(s in str(exc) for s in (
                "unexpected pos", "file write failed", "No space left on device")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
