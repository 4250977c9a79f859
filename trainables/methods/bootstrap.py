"""PLACEHOLDER — being written by a helper."""
from .base import Method


class BootstrapSoft(Method):
    pass


class BootstrapHard(Method):
    pass
