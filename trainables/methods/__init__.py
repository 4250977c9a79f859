"""Noise-robust methods: name -> Method class (one file each), behind :func:`create_method`.

``METHODS`` is a :class:`trainables.registry.Registry`: one line per built-in method below; a plugin
adds its own with ``METHODS.register("name", MyMethod)`` (docs/plugins.md).
"""
from __future__ import annotations

from ..registry import Registry
from .adele import Adele
from .base import Method, MethodContext, TrainIoU
from .bootstrap import BootstrapHard, BootstrapSoft
from .ce import CrossEntropy
from .gce import GeneralizedCE
from .lncis import Lncis
from .pu import PULearning
from .sce import SymmetricCE
from .tloss import TLoss


def _check(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"got {cls!r}; expected a subclass of trainables.methods.Method")


# one line per built-in method; plugins call METHODS.register(name, cls)
METHODS: Registry[type[Method]] = Registry("method", key="name", path="method.name", params=lambda cls: cls.Params,
                                           check=_check, entries={
    "ce": CrossEntropy,
    "adele": Adele,
    "lncis": Lncis,
    "sce": SymmetricCE,
    "gce": GeneralizedCE,
    "bootstrap_soft": BootstrapSoft,
    "bootstrap_hard": BootstrapHard,
    "pu": PULearning,
    "tloss": TLoss,
})


def method_class(name: str, path: str = "method.name") -> type[Method]:
    return METHODS.get(name, path)


def create_method(cfg, ctx: MethodContext) -> Method:
    """Instantiate the method of a MethodConfig."""
    return method_class(cfg.name)(cfg.params, ctx)


__all__ = ["METHODS", "Method", "MethodContext", "TrainIoU", "create_method", "method_class"]
