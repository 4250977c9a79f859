"""Model factory over segmentation-models-pytorch architectures x encoders (smp and ``tu-`` timm).

Pretrained weights are never fetched silently: with ``allow_download: false`` (the default) a
requested ``encoder_weights`` must already be in the local cache, otherwise one clear error says how
to pre-download it.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

from .errors import ConfigError


def architectures() -> dict[str, type]:
    import segmentation_models_pytorch as smp

    return {name.lower(): cls for name, cls in smp.MODEL_ARCHITECTURES_MAPPING.items()}


def encoders() -> list[str]:
    from segmentation_models_pytorch.encoders import get_encoder_names

    return list(get_encoder_names())


def _check_encoder(name: str) -> None:
    if name.startswith("tu-"):
        import timm

        if not timm.is_model(name[3:]):
            close = timm.list_models(f"*{name[3:][:6]}*")[:8]
            hint = f"; similar timm models: {', '.join('tu-' + c for c in close)}" if close else ""
            raise ConfigError(f"model.encoder: unknown timm encoder {name!r}{hint} (list all: timm.list_models())")
        return
    valid = encoders()
    if name not in valid:
        from ._typed import suggest

        raise ConfigError(f"model.encoder: unknown encoder {name!r}{suggest(name, valid)}; allowed: "
                          f"{', '.join(valid)}, or any timm model as 'tu-<name>'")


def _check_kwargs(cls: type, cfg) -> None:
    """smp forwards unknown keywords to the encoder, where non-timm encoders drop them silently:
    reject them here instead, so a typo in model.kwargs is not ignored."""
    import inspect

    own = [n for n, p in inspect.signature(cls.__init__).parameters.items()
           if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
           and n not in ("self", "encoder_name", "encoder_weights", "in_channels", "classes")]
    if cfg.encoder.startswith("tu-"):
        return  # timm encoders accept their own keywords (drop_path_rate, ...): timm checks them
    from ._typed import suggest

    for key in cfg.kwargs:
        if key not in own:
            raise ConfigError(f"model.kwargs.{key}: not an option of {cls.__name__}{suggest(key, own)}; "
                              f"allowed: {', '.join(own)}")


@contextmanager
def _offline(enabled: bool):
    """Make huggingface_hub / timm read only the local cache while building the model."""
    if not enabled:
        yield
        return
    # huggingface_hub reads HF_HUB_OFFLINE once at import, so flip its module constant as well.
    import huggingface_hub.constants as hf_constants

    saved_env = os.environ.get("HF_HUB_OFFLINE")
    saved_const = hf_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = saved_const
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def create_model(cfg, num_classes: int, in_channels: int = 3) -> torch.nn.Module:
    """Build ``cfg.arch`` (e.g. unet, fpn, deeplabv3plus) with ``cfg.encoder`` for ``num_classes``."""
    archs = architectures()
    arch = cfg.arch.lower()
    if arch not in archs:
        from ._typed import suggest

        raise ConfigError(f"model.arch: unknown architecture {cfg.arch!r}{suggest(arch, archs)}; allowed: {', '.join(archs)}")
    _check_encoder(cfg.encoder)
    _check_kwargs(archs[arch], cfg)
    try:
        with _offline(cfg.encoder_weights is not None and not cfg.allow_download):
            return archs[arch](encoder_name=cfg.encoder, encoder_weights=cfg.encoder_weights,
                               in_channels=in_channels, classes=num_classes, **cfg.kwargs)
    except TypeError as exc:  # an unknown keyword in model.kwargs
        raise ConfigError(f"model.kwargs: {exc}") from None
    except (KeyError, ValueError) as exc:
        if cfg.encoder_weights is not None and "weights" in str(exc).lower():
            raise ConfigError(f"model.encoder_weights: {cfg.encoder_weights!r} is not available for encoder "
                              f"{cfg.encoder!r} ({exc})") from None
        raise ConfigError(f"model: cannot build {cfg.arch} with encoder {cfg.encoder}: {exc}") from None
    except (OSError, RuntimeError) as exc:
        if cfg.encoder_weights is None:
            raise
        raise ConfigError(
            f"model.encoder_weights: {cfg.encoder_weights!r} weights for {cfg.encoder!r} are not in the local "
            f"cache ({type(exc).__name__}). Pre-download them on a machine with internet: "
            f"python -c \"import segmentation_models_pytorch as smp; smp.create_model('{cfg.arch}', "
            f"'{cfg.encoder}', encoder_weights='{cfg.encoder_weights}')\" and copy ~/.cache/huggingface and "
            f"~/.cache/torch here, or set model.allow_download: true, or model.encoder_weights: null") from None
