"""The trial config: typed, validated at the edge, written next to every result.

YAML shape (every section optional; defaults give the synthetic default trial)::

    dataset: {name: synthetic, root: null, size: [64, 64], max_images: null, ...loader options}
    noise:   [{kind: morph, rate: 1.0, ...kind params}, ...]     # applied in order
    model:   {arch: unet, encoder: resnet18, encoder_weights: null, kwargs: {}}
    method:  {name: ce, ...method params}
    train:   {epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, ...}
    seed: 0
    noise_seed: null      # null: same as seed
    eval_every: 1

Named components (dataset, noise kinds, method) keep their own parameters flat beside ``name`` /
``kind``; each registry entry owns the dataclass that validates them.

Dotted keys (``noise.0.rate``: ``--set``, a study's conditions and searched values, a replica's
overrides) are read and set here only: :func:`set_value`, :func:`with_values`, :func:`get_value`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .typed import check_range, coerce, from_dict, join, suggest, to_dict
from .errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetConfig:
    name: str = "synthetic"
    root: str | None = None
    size: tuple[int, int] | None = None  # (H, W) after decoding; None: the loader's default
    max_images: int | dict[str, int] | None = None  # first N images per split (all, or per split)
    options: Any = None  # the loader's Options dataclass, flattened in YAML

    COMMON = ("name", "root", "size", "max_images")

    def validate(self, path: str) -> None:
        if self.size is not None:
            for i, s in enumerate(self.size):
                check_range(join(join(path, "size"), i), s, 8, 4096)
        if isinstance(self.max_images, dict):
            for k, v in self.max_images.items():
                if k not in SPLITS:
                    raise ConfigError(f"{join(path, 'max_images')}.{k}: unknown split{suggest(k, SPLITS)}; allowed: {', '.join(SPLITS)}")
                check_range(f"{join(path, 'max_images')}.{k}", v, 1)
        else:
            check_range(join(path, "max_images"), self.max_images, 1)

    def split_limits(self) -> dict[str, int | None]:
        if isinstance(self.max_images, dict):
            return {s: self.max_images.get(s) for s in SPLITS}
        return {s: self.max_images for s in SPLITS}


@dataclass
class NoiseSpec:
    kind: str
    params: Any = None  # the kind's Params dataclass, flattened in YAML


@dataclass
class ModelConfig:
    arch: str = "unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    allow_download: bool = False  # fetch missing pretrained weights (needs internet)
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the smp architecture


@dataclass
class MethodConfig:
    name: str = "ce"
    params: Any = None  # the method's Params dataclass, flattened in YAML


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 8
    eval_batch_size: int | None = None  # None: 2 x batch_size
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: Literal["poly", "constant"] = "poly"
    poly_power: float = 0.9
    augment: bool = False  # random h-flip + scale crop; the ADELE paper trains without
    # auto: bf16 autocast on CUDA (fp16 + GradScaler where bf16 is unsupported), off on CPU;
    # true: the same on CUDA and bf16 autocast on CPU; false: full precision
    amp: bool | Literal["auto"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch intra-op threads; None: torch's default
    # where the training-set diagnostics (train IoU, IoU_el / IoU_m, the method's observations, e.g.
    # ADELE's curves) come from: eval_pass = an eval-mode forward over the un-augmented training
    # images after the training pass; train_pass = the training pass's own train-mode predictions
    # (no extra forward; needs augment: false). Default eval_pass by measurement: train_pass moves
    # ADELE's trigger epochs by more than +-1 on the quick start's trial (docs/performance.md 2b)
    diagnostics: Literal["eval_pass", "train_pass"] = "eval_pass"

    def validate(self, path: str) -> None:
        check_range(join(path, "epochs"), self.epochs, 1)
        check_range(join(path, "batch_size"), self.batch_size, 1)
        check_range(join(path, "eval_batch_size"), self.eval_batch_size, 1)
        check_range(join(path, "lr"), self.lr, 0, lo_open=True)
        check_range(join(path, "momentum"), self.momentum, 0, 1, hi_open=True)
        check_range(join(path, "weight_decay"), self.weight_decay, 0)
        check_range(join(path, "poly_power"), self.poly_power, 0)
        check_range(join(path, "threads"), self.threads, 1)
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"{join(path, 'device')}: got {self.device!r}; allowed: auto, cpu, cuda, cuda:N")
        if self.diagnostics == "train_pass" and self.augment:
            raise ConfigError(f"{join(path, 'diagnostics')}: train_pass takes the diagnostics from the training "
                              "pass, whose batches train.augment misaligns with the labels; use eval_pass or "
                              "train.augment: false")


@dataclass
class TrialConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    noise: list[NoiseSpec] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    noise_seed: int | None = None
    eval_every: int = 1

    @property
    def effective_noise_seed(self) -> int:
        return self.seed if self.noise_seed is None else self.noise_seed

    def to_dict(self) -> dict:
        """Plain dict in the YAML shape (component params flattened), re-parseable as is."""
        out = to_dict(self)
        ds = {k: out["dataset"][k] for k in DatasetConfig.COMMON}
        ds.update(to_dict(self.dataset.options) or {})
        out["dataset"] = ds
        out["noise"] = [{"kind": s.kind, **(to_dict(s.params) or {})} for s in self.noise]
        out["method"] = {"name": self.method.name, **(to_dict(self.method.params) or {})}
        return out


# -- parsing -----------------------------------------------------------------------------------

SECTIONS = ("dataset", "noise", "method")  # the trial sections that name a registry entry


def components() -> dict[str, tuple[Any, tuple[str, ...]]]:
    """The named components of a trial: YAML section -> (its registry, the keys beside the naming
    key that every entry accepts). Parsing, ``set_value`` and ``--list`` read registries only here."""
    from .data import DATASETS
    from .methods import METHODS
    from .noise import NOISE_KINDS

    return {"dataset": (DATASETS, DatasetConfig.COMMON[1:]), "noise": (NOISE_KINDS, ()), "method": (METHODS, ())}


def _named(data: Any, path: str, section: str, default: str) -> tuple[dict, Any]:
    """Split a flat ``{key: name, common..., params...}`` mapping of a trial section into the
    common values and the params dataclass of the registry entry it names."""
    registry, common = components()[section]
    key = registry.key
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: got {data!r}; expected a mapping")
    name = data.get(key, default)
    if not isinstance(name, str):
        raise ConfigError(f"{join(path, key)}: got {name!r}; expected a string")
    params_cls = registry.params(name, join(path, key))  # an unknown name: the hint, allowed names
    rest = {k: v for k, v in data.items() if k not in common and k != key}
    common_vals = {k: v for k, v in data.items() if k in common}
    try:
        params = from_dict(params_cls, rest, path)
    except ConfigError as exc:
        msg = str(exc)
        if "unknown key" in msg:  # list the common keys too, they are just as valid here
            head, _, allowed = msg.partition("; allowed: ")
            msg = f"{head}; allowed: {', '.join([key, *common])}{', ' if allowed else ''}{allowed}"
        raise ConfigError(msg) from None
    return {key: name, **common_vals}, params


def parse_trial(data: Any, path: str = "") -> TrialConfig:
    """Validate a plain dict (parsed YAML) into a TrialConfig. Errors name ``path.key``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'trial'}: got {type(data).__name__}; expected a mapping")
    data = dict(data)
    allowed = [f.name for f in dataclasses.fields(TrialConfig)]
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{join(path, key)}: unknown key{suggest(key, allowed)}; allowed: {', '.join(allowed)}")

    p = join(path, "dataset")
    common, options = _named(data.get("dataset"), p, "dataset", "synthetic")
    dataset = from_dict(DatasetConfig, common, p)
    dataset.options = options

    raw_noise = data.get("noise") or []
    if isinstance(raw_noise, dict):
        raw_noise = [raw_noise]
    if not isinstance(raw_noise, list):
        raise ConfigError(f"{join(path, 'noise')}: got {raw_noise!r}; expected a list of {{kind: ...}} mappings")
    noise = []
    for i, item in enumerate(raw_noise):
        p = f"{join(path, 'noise')}[{i}]"
        if not isinstance(item, dict) or "kind" not in item:
            raise ConfigError(f"{p}: expected a mapping with a 'kind' key")
        common, params = _named(item, p, "noise", "")
        noise.append(NoiseSpec(common["kind"], params))

    p = join(path, "method")
    common, params = _named(data.get("method"), p, "method", "ce")
    method = MethodConfig(common["name"], params)

    model = from_dict(ModelConfig, data.get("model"), join(path, "model"))
    train = from_dict(TrainConfig, data.get("train"), join(path, "train"))
    seed = coerce(data.get("seed", 0), int, join(path, "seed"))
    noise_seed = coerce(data.get("noise_seed"), int | None, join(path, "noise_seed"))
    eval_every = coerce(data.get("eval_every", 1), int, join(path, "eval_every"))
    check_range(join(path, "eval_every"), eval_every, 1)
    cfg = TrialConfig(dataset, noise, model, method, train, seed, noise_seed, eval_every)
    check = getattr(method.params, "check_trial", None)  # a method's checks against the whole trial
    if check is not None:
        check(cfg, join(path, "method"))
    return cfg


def _accepted_keys(section: str, name: Any) -> set[str] | None:
    """Keys a component of ``section`` named ``name`` accepts (None: unknown name, keep all and let
    validation report it)."""
    registry, common = components()[section]
    try:
        params = registry.accepted_keys(name)
    except TypeError:  # an unhashable name: validation reports it
        return None
    return None if params is None else params | {registry.key, *common}


def set_value(data: dict, key: str, value: Any) -> None:
    """Set the dotted ``key`` in ``data`` in place, creating mappings on the way; a numeric part
    indexes a list (``noise.0.rate``). Renaming a component (``method.name``, ``dataset.name``,
    ``noise.N.kind``, also under a study's ``trial.``) drops the parameters the new one does not
    accept, so ``--set method.name=lncis`` switches methods even when the config holds ADELE's
    parameters."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "config"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{key}: {where} is a list of {len(node)}; use an index below {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"{key}: {where} is not a mapping")
        if i == len(parts) - 1:
            rel = parts[1:] if parts[0] == "trial" else parts  # a study's trial block: trial.method.name
            section = rel[0] if (len(rel) == 2 or (len(rel) == 3 and rel[0] == "noise")) else None
            if section in SECTIONS and part == components()[section][0].key and node.get(part) != value:
                accepted = _accepted_keys(section, value)
                if accepted is not None:
                    for stale in [k for k in node if k not in accepted]:
                        del node[stale]
            node[part] = value
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]


def with_values(data: dict, values: dict[str, Any]) -> dict:
    """A copy of ``data`` with dotted keys set to values as they are (no YAML round trip, which
    would read 1e-05 as a string), see :func:`set_value`: a study's conditions and searched values,
    a replica's overrides."""
    out = copy.deepcopy(data)
    for key, value in values.items():
        set_value(out, key, copy.deepcopy(value))
    return out


def get_value(data: dict, key: str, default: Any = None) -> Any:
    """The value at the dotted ``key`` in ``data`` (a numeric part indexes a list), or ``default``."""
    node: Any = data
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A copy of ``data`` with ``key.sub=value`` strings applied (values parsed as YAML), see
    :func:`set_value`."""
    data = copy.deepcopy(data) if data else {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
        try:
            value = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except _DuplicateKey as exc:
            raise ConfigError(f"--set {key}: duplicate key {exc.key!r} in {raw!r}; give each key once") from None
        except yaml.YAMLError:
            value = raw
        try:
            set_value(data, key, value)
        except ConfigError as exc:
            raise ConfigError(f"--set {exc}") from None
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, except that a key given twice in one mapping is an error instead of the
    last one silently winning (merge keys ``<<`` may still be overridden, as YAML intends)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _DuplicateKey(key, first, line)
                seen[key] = line
        return super().construct_mapping(node, deep)


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text with the strict safe loader; errors name ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{source}: line {exc.second}: duplicate key {exc.key!r} (first given at line "
                          f"{exc.first}); give each key once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        if isinstance(exc, yaml.reader.ReaderError):  # a control character: its line
            where = f" line {text[:exc.position].count(chr(10)) + 1}"
        what = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        what = " ".join(str(what).split())
        raise ConfigError(f"{source}:{where} invalid YAML ({what})") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file through the safe loader, with one-line errors for every way it can be wrong:
    missing, a folder, unreadable, binary or not UTF-8, invalid YAML, a key given twice."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give a YAML file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes); give a YAML file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "give a YAML file saved as UTF-8") from None
    return parse_yaml_text(text, str(path))


def load_trial_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrialConfig:
    """Read a trial YAML, or a study YAML's ``trial:`` block, apply ``--set`` overrides, validate.
    The YAML's top-level ``plugins:`` (paths relative to it) are imported first (trainables.plugins).
    Errors are prefixed with the file name."""
    from .plugins import load as load_plugins

    raw: Any = {}
    if path is not None:
        raw = read_yaml(path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        if "plugins" in raw:
            raw = dict(raw)
            try:
                load_plugins(raw.pop("plugins"), Path(path).parent)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        if "trial" in raw:  # a study YAML: its trial block is the base config
            raw = raw["trial"] or {}
    raw = apply_overrides(raw, overrides or [])
    try:
        return parse_trial(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def dump_trial_config(cfg: TrialConfig, plugins: list[str] | None = None) -> str:
    """The YAML of ``cfg``; ``plugins`` (resolved references) first, so that it re-runs as is."""
    head = yaml.safe_dump({"plugins": list(plugins)}, sort_keys=False) if plugins else ""
    return head + yaml.safe_dump(cfg.to_dict(), sort_keys=False)
