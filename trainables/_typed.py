"""The older, private name of :mod:`trainables.typed` (kept for imports written before it was public)."""
from .typed import _describe, check_range, coerce, from_dict, join, suggest, to_dict  # noqa: F401
