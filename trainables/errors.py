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
