"""The model factory: real smp/timm models, and one-line errors listing the valid names."""
import pytest
import torch

from trainables.config import ModelConfig
from trainables.errors import ConfigError
from trainables.models import create_model


@pytest.mark.parametrize("arch, encoder", [("unet", "resnet18"), ("fpn", "tu-resnet10t"), ("deeplabv3plus", "resnet18")])
def test_builds_architecture_and_encoder_with_requested_classes(arch: str, encoder: str) -> None:
    model = create_model(ModelConfig(arch=arch, encoder=encoder), num_classes=7)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 7, 64, 64)


def test_unknown_architecture_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"model.arch: unknown architecture 'unett' \(did you mean 'unet'\?\); allowed: .*deeplabv3plus"):
        create_model(ModelConfig(arch="unett"), 3)


def test_unknown_encoders_list_valid_ones() -> None:
    with pytest.raises(ConfigError, match="model.encoder: unknown encoder 'resnet19'.*allowed: resnet18.*tu-<name>"):
        create_model(ModelConfig(encoder="resnet19"), 3)
    with pytest.raises(ConfigError, match="unknown timm encoder 'tu-notanet'"):
        create_model(ModelConfig(encoder="tu-notanet"), 3)


def test_weights_missing_from_cache_fail_with_predownload_advice(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        create_model(ModelConfig(encoder="resnet18", encoder_weights="imagenet"), 3)
    msg = str(err.value)
    assert "not in the local cache" in msg and "Pre-download" in msg and "\n" not in msg


def test_bad_model_kwargs_name_the_key() -> None:
    with pytest.raises(ConfigError, match="model.kwargs"):
        create_model(ModelConfig(kwargs={"no_such_option": 1}), 3)


def test_depth3_unet_drops_the_unused_encoder_stages_and_still_loads_full_state() -> None:
    """smp keeps resnet18's layer3/layer4 in a depth-3 UNet although its forward never calls them:
    the factory prunes them (same outputs, a state dict 93 % smaller), and a state dict of the
    unpruned model still loads exactly."""
    import io

    from trainables.models import Pruned

    cfg = ModelConfig(kwargs={"encoder_depth": 3, "decoder_channels": [32, 16, 8]})
    torch.manual_seed(0)
    full = create_model(cfg, 5, prune=False)
    rng_after_full = torch.get_rng_state()
    torch.manual_seed(0)
    pruned = create_model(cfg, 5)
    assert torch.equal(torch.get_rng_state(), rng_after_full)  # pruning draws no random numbers
    assert pruned.pruned_modules == ["encoder.layer3", "encoder.layer4"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(full.eval()(x), pruned.eval()(x))
    size = lambda m: len((lambda b: (torch.save(m.state_dict(), b), b.getvalue())[1])(io.BytesIO()))  # noqa: E731
    assert size(pruned) < 0.1 * size(full)
    full.encoder.layer1[0].conv1.weight.data.add_(1.0)  # a state that differs, with the pruned keys in it
    pruned.load_state_dict(full.state_dict())  # strict: the pruned keys are dropped, nothing else
    assert all(torch.equal(v, full.state_dict()[k]) for k, v in pruned.state_dict().items())
    with pytest.raises(RuntimeError, match="pruned as unused"):
        Pruned("encoder.layer4")(x)


def test_full_depth_models_keep_every_parameter() -> None:
    for arch in ("unet", "fpn"):
        model = create_model(ModelConfig(arch=arch), 3)
        assert model.pruned_modules == []
        assert sum(p.numel() for p in model.parameters()) == \
            sum(p.numel() for p in create_model(ModelConfig(arch=arch), 3, prune=False).parameters())


def test_a_model_that_iterates_over_unused_modules_is_left_whole() -> None:
    """Pruning is kept only if the pruned forward runs and gives the same outputs (some timm
    encoders loop over all their blocks and break early: their unused blocks are never called but
    must stay iterable)."""
    from trainables.models import prune_unused

    class LoopsOverBlocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 2, 1)
            self.blocks = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), torch.nn.Conv2d(2, 2, 1))

        def forward(self, x):
            for _ in self.blocks:  # looks at the blocks, never calls them
                break
            return self.stem(x)

    class NeverTouchesHead(LoopsOverBlocks):
        def forward(self, x):
            return self.stem(x)

    kept = LoopsOverBlocks()
    assert prune_unused(kept) == [] and isinstance(kept.blocks, torch.nn.Sequential)
    assert kept(torch.zeros(1, 3, 4, 4)).shape == (1, 2, 4, 4)
    assert prune_unused(NeverTouchesHead()) == ["blocks"]
