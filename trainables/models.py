"""Model factory over segmentation-models-pytorch architectures x encoders (smp and ``tu-`` timm).

Pretrained weights are never fetched silently: with ``allow_download: false`` (the default) a
requested ``encoder_weights`` must already be in the local cache, otherwise one clear error says how
to pre-download it.

Built models hold only the parameters their forward pass uses: smp keeps the whole encoder even when
``encoder_depth`` < 5 (a depth-3 UNet-resnet18 carries resnet18's unused layer3/layer4, 93 % of its
weights), so :func:`prune_unused` replaces such submodules by a placeholder that fails loudly if it is
ever called. Checkpoints shrink accordingly, and state dicts of the unpruned model still load
(the pruned keys are dropped on load).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

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
        from .typed import suggest

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
    from .typed import suggest

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


class Pruned(torch.nn.Module):
    """Stands in for a submodule the forward pass never uses (see :func:`prune_unused`)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"model: submodule {self.name!r} was pruned as unused by the forward pass, "
                           "but it was called (build the model with prune=False)")

    def extra_repr(self) -> str:
        return self.name


PROBE_SIZE = 64  # probe input side: a multiple of every smp encoder's output stride (32)


def _probe(model: torch.nn.Module, in_channels: int, *, train: bool = False, backward: bool = False) -> list:
    """Outputs of one forward pass of a zero probe batch, in eval (or train) mode; with
    ``backward``, gradients of their sum are left in ``.grad``. Global RNG, mode and buffers (BN
    statistics a train-mode pass updates) are restored."""
    was_training = model.training
    buffers = {k: v.clone() for k, v in model.named_buffers()} if train else {}
    try:
        with torch.random.fork_rng(devices=[]), torch.set_grad_enabled(backward):
            model.train(train)
            device = next(model.parameters()).device
            out = model(torch.zeros(2, in_channels, PROBE_SIZE, PROBE_SIZE, device=device))
            outputs = [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, torch.Tensor)]
            if backward:
                sum(o.float().sum() for o in outputs).backward()
            return [o.detach() for o in outputs]
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                if k in buffers:
                    v.copy_(buffers[k])
        model.train(was_training)


def unused_parameters(model: torch.nn.Module, in_channels: int = 3) -> set[str] | None:
    """Names of the parameters that get no gradient from one eval-mode forward/backward pass of a
    probe input (None when the probe does not run on this model). Parameters, buffers, gradients,
    mode and the global RNG are left as they were."""
    grads = {n: p.grad for n, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.grad = None
        _probe(model, in_channels, backward=True)
        return {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    except Exception:  # an architecture the probe cannot run (input-size constraints): keep everything
        return None
    finally:
        for n, p in model.named_parameters():
            p.grad = grads[n]


def prune_unused(model: torch.nn.Module, in_channels: int = 3) -> list[str]:
    """Replace the largest submodules whose parameters are all unused (:func:`unused_parameters`) by
    :class:`Pruned` placeholders; returns their names. Kept only when the pruned model's forward
    gives the same outputs in eval mode and runs in train mode (a model that merely iterates over
    an unused container, as some timm encoders do, is left whole). The state dict loses the pruned
    parameters and buffers; loading a state dict that still has them drops those keys first
    (checkpoints written before pruning still load)."""
    unused = unused_parameters(model, in_channels)
    if not unused:
        return []
    pruned: list[str] = []
    for name, module in list(model.named_modules()):
        if not name or any(name.startswith(p + ".") for p in pruned):
            continue
        params = [f"{name}.{n}" for n, _ in module.named_parameters()]
        if params and all(n in unused for n in params):
            pruned.append(name)
    if not pruned:
        return []
    reference = _probe(model, in_channels)
    originals = {}
    for name in pruned:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        originals[name] = (parent, child, getattr(parent, child))
        setattr(parent, child, Pruned(name))
    try:
        same = all(torch.equal(a, b) for a, b in zip(_probe(model, in_channels), reference, strict=True))
        _probe(model, in_channels, train=True)
    except Exception:
        same = False
    if not same:
        for parent, child, module in originals.values():
            setattr(parent, child, module)
        return []
    prefixes = tuple(p + "." for p in pruned)

    def drop_pruned(module, state_dict, prefix, *_):
        for key in [k for k in state_dict if k.startswith(prefix) and k[len(prefix):].startswith(prefixes)]:
            del state_dict[key]

    model.register_load_state_dict_pre_hook(drop_pruned)
    model.pruned_modules = pruned
    return pruned


def create_model(cfg, num_classes: int, in_channels: int = 3, prune: bool = True) -> torch.nn.Module:
    """Build ``cfg.arch`` (e.g. unet, fpn, deeplabv3plus) with ``cfg.encoder`` for ``num_classes``;
    with ``prune``, submodules the forward pass never uses are dropped (:func:`prune_unused`)."""
    model = _build(cfg, num_classes, in_channels)
    model.pruned_modules = prune_unused(model, in_channels) if prune else []
    return model


def _build(cfg, num_classes: int, in_channels: int) -> torch.nn.Module:
    archs = architectures()
    arch = cfg.arch.lower()
    if arch not in archs:
        from .typed import suggest

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


def optimizer_state_for(model: torch.nn.Module, opt: dict[str, Any], cfg, num_classes: int,
                        in_channels: int = 3) -> dict[str, Any]:
    """``opt`` (an optimizer state dict over ``model``'s trainable parameters, one group) as is, or,
    when it was written for the unpruned model (one entry per parameter of the full model),
    re-indexed to the parameters the pruned ``model`` has."""
    own = [n for n, p in model.named_parameters() if p.requires_grad]
    groups = opt.get("param_groups", [])
    if len(groups) != 1 or len(groups[0]["params"]) == len(own) or not getattr(model, "pruned_modules", None):
        return opt
    with torch.random.fork_rng(devices=[]):
        full = [n for n, p in _build(cfg, num_classes, in_channels).named_parameters() if p.requires_grad]
    old_ids = groups[0]["params"]
    if len(full) != len(old_ids):
        return opt  # not the unpruned model's state either: let the optimizer report the mismatch
    where = dict(zip(full, old_ids))
    state = {new: opt["state"][where[name]] for new, name in enumerate(own) if where[name] in opt["state"]}
    return {"state": state, "param_groups": [{**groups[0], "params": list(range(len(own)))}]}
