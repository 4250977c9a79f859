"""The one registry type (trainables.registry) behind methods, noise kinds and datasets: the lookup
error with the close-name hint, refused duplicates and bad entries, and an entry registered from
outside the package that --list shows and the config parser validates like a built-in."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from trainables import run as run_cli
from trainables.config import apply_overrides, parse_trial
from trainables.data import DATASETS, DatasetEntry
from trainables.errors import ConfigError
from trainables.methods import METHODS, Method
from trainables.noise import NOISE_KINDS, NoiseKind
from trainables.registry import Registry
from trainables.typed import check_range, join


@pytest.fixture
def registries():
    """The three registries, restored to their built-in entries afterwards."""
    saved = [(r, r.snapshot()) for r in (METHODS, NOISE_KINDS, DATASETS)]
    yield
    for r, snap in saved:
        r.restore(snap)


class Outside(Method):
    """A method defined outside the package (here: in a test module)."""

    @dataclass
    class Params:
        weight: float = 0.5  # the outside weight

        def validate(self, path: str) -> None:
            check_range(join(path, "weight"), self.weight, 0, 1)


@dataclass
class SaltParams:
    rate: float = 0.1


def salt(masks: np.ndarray, params: SaltParams, rng: np.random.Generator, ctx) -> np.ndarray:
    return masks.copy()


@pytest.mark.parametrize("section, value, line", [
    ("method", {"name": "adel"}, "method.name: unknown method 'adel' (did you mean 'adele'?); allowed: ce, adele,"),
    ("noise", [{"kind": "morf"}], "noise[0].kind: unknown noise kind 'morf' (did you mean 'morph'?); allowed: morph,"),
    ("dataset", {"name": "camvd"}, "dataset.name: unknown dataset 'camvd' (did you mean 'camvid'?); allowed: synthetic,"),
])
def test_unknown_name_gives_path_hint_and_allowed_names(section, value, line) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_trial({section: value})
    assert str(exc.value).startswith(line) and "\n" not in str(exc.value)


def test_lookup_hint_comes_from_the_registry_itself() -> None:
    reg = Registry("widget", key="name", path="widget.name", params=lambda obj: None,
                   entries={"alpha": object(), "beta": object()})
    assert str(reg.error("alpah")) == "widget.name: unknown widget 'alpah' (did you mean 'alpha'?); allowed: alpha, beta"
    assert str(reg.error("zzz", "x.y")) == "x.y: unknown widget 'zzz'; allowed: alpha, beta"
    with pytest.raises(ConfigError, match=r"^a\.b: unknown widget 'gamma'; allowed: alpha, beta$"):
        reg.get("gamma", "a.b")
    assert reg.params("alpha") is None and reg.accepted_keys("alpha") == set() and reg.accepted_keys("nope") is None
    assert list(reg) == ["alpha", "beta"] and "beta" in reg and len(reg) == 2


def test_duplicate_and_bad_registrations_are_refused_in_one_line(registries) -> None:
    with pytest.raises(ConfigError) as exc:
        METHODS.register("ce", Outside)
    assert str(exc.value) == ("register method 'ce': already registered (by trainables.methods.ce); "
                              "choose another name")
    with pytest.raises(ConfigError, match=r"^register method 'x': got 3; expected a subclass of trainables"):
        METHODS.register("x", 3)
    with pytest.raises(ConfigError, match=r"^register noise kind 'x': got .*expected trainables.noise.NoiseKind"):
        NOISE_KINDS.register("x", salt)
    with pytest.raises(ConfigError, match=r"^register dataset 'two words': a name is letters"):
        DATASETS.register("two words", DatasetEntry(SaltParams, lambda cfg: None))
    assert "x" not in METHODS and "x" not in NOISE_KINDS  # nothing half-registered
    METHODS.register("outside", Outside)
    with pytest.raises(ConfigError, match=r"already registered \(by tests?\.?.*test_registry\)"):
        METHODS.register("outside", Outside)


def test_outside_registration_lists_and_validates_like_a_builtin(registries, capsys) -> None:
    assert METHODS.register("outside", Outside) is Outside
    NOISE_KINDS.register("salt", NoiseKind(SaltParams, salt))

    @METHODS.register("outside_too")  # the decorator form returns the class
    class OutsideToo(Method):
        pass

    assert METHODS["outside_too"] is OutsideToo and METHODS.accepted_keys("outside_too") == set()

    assert run_cli.main(["--list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "\n  outside  (plugin " in out and "weight  0.5" in out and "# the outside weight" in out
    assert run_cli.main(["--list", "noise"]) == 0
    assert "\n  salt  (plugin " in capsys.readouterr().out
    assert run_cli.main(["--list"]) == 0
    assert "outside  (plugin" in capsys.readouterr().out

    cfg = parse_trial({"method": {"name": "outside", "weight": 0.25}, "noise": [{"kind": "salt", "rate": 0.3}]})
    assert isinstance(cfg.method.params, Outside.Params) and cfg.method.params.weight == 0.25
    assert cfg.noise[0].params == SaltParams(0.3)
    assert cfg.to_dict()["method"] == {"name": "outside", "weight": 0.25}
    with pytest.raises(ConfigError, match=r"^method\.weight: got 2"):
        parse_trial({"method": {"name": "outside", "weight": 2}})
    with pytest.raises(ConfigError, match=r"^method\.wieght: unknown key \(did you mean 'weight'\?\); allowed: name, weight"):
        parse_trial({"method": {"name": "outside", "wieght": 0.1}})
    with pytest.raises(ConfigError, match=r"^method\.name: unknown method 'outsid' \(did you mean 'outside'\?\); "
                                          r"allowed: .*, outside, outside_too$"):
        parse_trial({"method": {"name": "outsid"}})
    # switching to it with --set drops the parameters the old method had (the one accepted-keys rule)
    data = apply_overrides({"method": {"name": "gce", "q": 0.5}}, ["method.name=outside"])
    assert data == {"method": {"name": "outside"}}
