"""Noise-robust methods: name -> Method class (one file each), behind :func:`create_method`."""
from __future__ import annotations

from ..errors import ConfigError
from .adele import Adele
from .base import Method, MethodContext, TrainIoU
from .bootstrap import BootstrapHard, BootstrapSoft
from .ce import CrossEntropy
from .gce import GeneralizedCE
from .lncis import Lncis
from .pu import PULearning
from .sce import SymmetricCE
from .tloss import TLoss

METHODS: dict[str, type[Method]] = {
    "ce": CrossEntropy,
    "adele": Adele,
    "lncis": Lncis,
    "sce": SymmetricCE,
    "gce": GeneralizedCE,
    "bootstrap_soft": BootstrapSoft,
    "bootstrap_hard": BootstrapHard,
    "pu": PULearning,
    "tloss": TLoss,
}


def method_class(name: str, path: str = "method.name") -> type[Method]:
    if name not in METHODS:
        raise ConfigError(f"{path}: unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


def create_method(cfg, ctx: MethodContext) -> Method:
    """Instantiate the method of a MethodConfig."""
    return method_class(cfg.name)(cfg.params, ctx)


__all__ = ["METHODS", "Method", "MethodContext", "TrainIoU", "create_method", "method_class"]
