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
