"""Where an export's checkpoint comes from: a run of ``python -m trainables.run``, one checkpoint
folder, a Ray trial folder of a study, or a study experiment folder (its best search trial, by the
report's rule, or one replicate). Reads files only; of ``study`` only the Ray-free
:mod:`study.results` (the trial records and the best-trial rule the report uses)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.results import best_trials, read_results, read_trials

from .errors import UserError


@dataclass
class Source:
    checkpoint: Path  # folder holding state.pt
    config_file: Path | None  # config.yaml or params.json beside it (None: the state's config)
    description: str

    def history(self) -> list[dict]:
        """Every epoch the run reported (metrics.jsonl of a run, result.json of a Ray trial), in
        order; [] if none."""
        for path in (self.checkpoint.parent.parent / "metrics.jsonl", self.checkpoint.parent / "result.json"):
            if path.is_file():
                return read_results(path)
        return []

    def run_metrics(self) -> dict:
        """The run's reported metrics at this checkpoint (metrics.jsonl of a run, result.json of a Ray
        trial): the epoch named by an ``epoch_NNNN`` folder, else the last one reported; {} if none."""
        ckpt = self.checkpoint
        for path in (ckpt.parent.parent / "metrics.jsonl", ckpt.parent / "result.json"):
            if path.is_file():
                rows = read_results(path)
                if ckpt.name.startswith("epoch_") and ckpt.name[6:].isdigit():
                    rows = [r for r in rows if r.get("epoch") == int(ckpt.name[6:])] or rows
                return rows[-1] if rows else {}
        return {}


# -- where the checkpoint is -----------------------------------------------------------------------

def _latest(paths: list[Path], what: Path) -> Path:
    found = [p for p in paths if (p / "state.pt").is_file()]
    if not found:
        raise UserError(f"{what}: no checkpoint here (no {what.name}/.../state.pt written by a run)")
    return max(found, key=lambda p: int("".join(ch for ch in p.name if ch.isdigit()) or 0))


def _ray_trial(tdir: Path, description: str) -> Source:
    return Source(_latest(list(tdir.glob("checkpoint_*")), tdir), tdir / "params.json", description)


def _study_source(exp: Path, condition: str | None, seed: int | None, replica: str) -> Source:
    import yaml

    spec = yaml.safe_load((exp / "study.yaml").read_text()) or {}
    conditions = sorted(d.name for d in exp.iterdir() if d.is_dir() and not d.name.endswith("-final")
                        and any(d.glob("*/params.json")))
    if condition is None:
        if len(conditions) != 1:
            raise UserError(f"--condition: {exp} holds {len(conditions)} conditions; choose one of: "
                            f"{', '.join(conditions) or '(none run yet)'}")
        condition = conditions[0]
    elif condition not in conditions:
        raise UserError(f"--condition: {condition!r} not in {exp}; allowed: {', '.join(conditions) or '(none run yet)'}")
    if seed is not None:
        final = exp / f"{condition}-final"
        found = []
        for t in read_trials(final):
            rep = t.replica
            found.append(f"{rep['label']} seed {rep.get('seed')}")
            if rep.get("seed") == seed and rep["label"] == replica:
                return _ray_trial(t.dir, f"{exp.name}/{condition} replicate {replica} seed {seed} ({t.dir.name})")
        raise UserError(f"--seed: no replicate {replica!r} with seed {seed} under {final}; found: "
                        f"{', '.join(found) or 'none'}")
    metric = (spec.get("metric") or {}).get("name", "best_val_miou")
    goal = (spec.get("metric") or {}).get("goal", "maximize")
    best = best_trials(read_trials(exp / condition), metric, goal, 1)
    if not best:
        raise UserError(f"{exp / condition}: no search trial finished its full budget with a {metric!r} value")
    tdir, value = best[0].dir, best[0].last[metric]
    return _ray_trial(tdir, f"{exp.name}/{condition} best search trial {tdir.name} ({metric} {value:.4f})")


def resolve_source(path: Path, condition: str | None = None, seed: int | None = None,
                   replica: str = "tuned") -> Source:
    """The checkpoint (and config file) that ``path`` designates; see the module doc."""
    if not path.exists():
        raise UserError(f"{path}: not found; expected a run directory, a checkpoint or a study experiment folder")
    if (path / "study.yaml").is_file():
        return _study_source(path, condition, seed, replica)
    if condition is not None or seed is not None:
        raise UserError(f"--condition/--seed: {path} is not a study experiment folder (no study.yaml)")
    if (path / "params.json").is_file():
        return _ray_trial(path, f"Ray trial {path.name}")
    if (path / "state.pt").is_file():
        for cfg in (path.parent.parent / "config.yaml", path.parent / "params.json"):
            if cfg.is_file():
                return Source(path, cfg, f"checkpoint {path}")
        return Source(path, None, f"checkpoint {path}")
    if (path / "config.yaml").is_file() or (path / "checkpoints").is_dir():
        return Source(_latest(list((path / "checkpoints").glob("epoch_*")), path), path / "config.yaml",
                      f"run {path}")
    raise UserError(f"{path}: no checkpoint here; expected a run directory (checkpoints/epoch_*/state.pt), a "
                    "checkpoint folder (state.pt), a Ray trial folder (checkpoint_*/) or a study folder (study.yaml)")


def load_source(source: Source) -> tuple[Any, dict]:
    """(TrialConfig, the checkpoint's 'labels' / 'model' / 'config' / 'epoch' entries)."""
    from .checkpoint import load_checkpoint
    from .config import load_trial_config, parse_trial

    state = load_checkpoint(source.checkpoint)
    if "model" not in state:
        raise UserError(f"{source.checkpoint / 'state.pt'}: checkpoint holds no model weights")
    cfg_file = source.config_file if source.config_file is not None and source.config_file.is_file() else None
    if cfg_file is None:
        if "config" not in state:
            raise UserError(f"{source.checkpoint / 'state.pt'}: no config in the checkpoint and no config.yaml or "
                            "params.json beside it")
        cfg = parse_trial(state["config"], "checkpoint config")
    elif cfg_file.name == "params.json":
        from .tune_adapter import trial_config

        try:
            cfg = trial_config(json.loads(cfg_file.read_text()))
        except json.JSONDecodeError as exc:
            raise UserError(f"{cfg_file}: not valid JSON ({exc.msg})") from None
    else:
        cfg = load_trial_config(cfg_file)
    return cfg, {k: state[k] for k in ("labels", "model", "config", "epoch") if k in state}
