"""``python -m study.run SPACE.yaml``: run (or ``--resume``) a hyperparameter study, then its report.

Each condition (a combination of the ``conditions:`` values) is one Optuna study searched with Ray
Tune, then its top configurations are replicated with ``final.seeds``; finished conditions are
skipped on ``--resume``. The report (report.md, CSVs, figures, best trial YAMLs) is written at the
end into ``<storage>/<name>/report``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

from trainables.config import apply_overrides, read_yaml
from trainables.errors import ConfigError, UserError

from .spec import StudySpec, condition_slug, load_study, parse_study

REPO = Path(__file__).resolve().parents[1]
SMOKE_DATA = {"synthetic": {"num_train": 16, "num_val": 8, "num_test": 8}}


def smoke_overrides(raw: dict) -> list[str]:
    """Shrink data, epochs, trials and conditions so the study takes a minute or two on 2 cores."""
    trial = raw.get("trial") or {}
    dataset = (trial.get("dataset") or {}).get("name", "synthetic")
    out = [f"name={raw.get('name', 'study')}-smoke", "trial.train.epochs=3", "trial.train.batch_size=8",
           "trial.train.threads=1", "trial.eval_every=1", "trial.dataset.size=[32, 32]",
           "search.num_samples=3", "search.max_concurrent=2", "scheduler.grace_period=1", "scheduler.max_t=null",
           "final.top_k=1", "resources.cpu=1", "logging.wandb.images_every=2"]
    seeds = (raw.get("final") or {}).get("seeds") or [1, 2]
    out.append(f"final.seeds={list(seeds)[:2]}")  # two of the study's own (fresh) replication seeds
    for k, v in SMOKE_DATA.get(dataset, {}).items():
        out.append(f"trial.dataset.{k}={v}")
    if dataset != "synthetic":
        out.append("trial.dataset.max_images={train: 16, val: 8, test: 8}")
    if (trial.get("model") or {}).get("arch", "unet") == "unet":
        out.append("trial.model.kwargs={encoder_depth: 3, decoder_channels: [32, 16, 8]}")
    for key, values in (raw.get("conditions") or {}).items():
        if isinstance(values, list):  # one combination: the first value of each condition
            out.append(f"conditions.{key}={yaml.safe_dump(values[:1], default_flow_style=True).strip()}")
    return out


def resolve_spec(path: str, *, smoke: bool, sets: list[str], storage: str | None, num_samples: int | None) -> StudySpec:
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (name, parameters, trial, ...)")
    extra = smoke_overrides(raw) if smoke else []
    extra += list(sets)
    if storage:
        extra.append(f"storage.path={storage}")
    if num_samples:
        extra.append(f"search.num_samples={num_samples}")
    return parse_study(apply_study_overrides(raw, extra), path)


def apply_study_overrides(raw: dict, items: list[str]) -> dict:
    """``--set`` for a study: condition and parameter keys contain dots themselves, so
    ``conditions.noise.0.rate=[0.5]`` and ``parameters.method.r.max=0.9`` address them whole."""
    raw = dict(raw)
    plain = []
    for item in items:
        key, _, value = item.partition("=")
        section, _, rest = key.partition(".")
        if section not in ("conditions", "parameters") or not rest:
            plain.append(item)
            continue
        table = raw[section] = dict(raw.get(section) or {})
        name = next((k for k in sorted(table, key=len, reverse=True)
                     if rest == k or rest.startswith(k + ".")), rest)
        if rest == name:
            table[name] = yaml.safe_load(value)
        else:
            table[name] = apply_overrides(table[name] if isinstance(table[name], dict) else {},
                                          [f"{rest[len(name) + 1:]}={value}"])
    return apply_overrides(raw, plain)


def experiment_dirs(spec: StudySpec) -> tuple[Path, str]:
    """(local folder of the study's own files, Ray's storage root for its experiments)."""
    root = spec.storage.path
    if "://" in root:
        return (Path("runs") / spec.name).resolve(), f"{root.rstrip('/')}/{spec.name}"
    exp = (Path(root).expanduser() / spec.name).resolve()
    return exp, str(exp)


def check_data(spec: StudySpec) -> None:
    """Datasets with files need ``dataset.root``: fail before anything is written."""
    ds = spec.trial.get("dataset") or {}
    if ds.get("name", "synthetic") != "synthetic":
        root = ds.get("root")
        if not root:
            raise ConfigError(f"trial.dataset.root: required for dataset {ds.get('name')!r}; "
                              "pass --set trial.dataset.root=DIR (e.g. ../shared/data/camvid)")
        if "://" not in str(root) and not Path(root).expanduser().exists():
            raise ConfigError(f"trial.dataset.root: {root}: no such folder")


def prepare_experiment(spec: StudySpec, resume: bool) -> StudySpec:
    """Refuse to overwrite; on --resume continue with the stored spec."""
    exp_dir, _ = experiment_dirs(spec)
    stored = exp_dir / "study.yaml"
    if stored.exists():
        if not resume:
            raise UserError(f"experiment {spec.name!r} already exists at {exp_dir}; pass --resume to continue it "
                            "or choose another name (--set name=...)")
        old = load_study(stored)
        if old.to_dict() != spec.to_dict():
            print(f"note: resuming with the spec stored in {stored} (it differs from the one given)", file=sys.stderr)
        return old
    if resume:
        print(f"note: no experiment at {exp_dir}; starting it", file=sys.stderr)
    exp_dir.mkdir(parents=True, exist_ok=True)
    stored.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return spec


def init_ray(address: str | None) -> None:
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address == "local":  # workers import the project from this checkout
        paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        ray.init(address="local", include_dashboard=False, configure_logging=False, log_to_driver=True)
    else:
        ray.init(address=address)


def run_study(spec: StudySpec, *, address: str | None = None, verbose: int = 1) -> Path:
    from .report import write_report
    from .tuner import run_condition

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment state: at most 5 s old
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # trials checkpoint every epoch and synthetic epochs last seconds, so Ray's "excessive experiment
    # checkpoint sync" hint would repeat all run long; it is a tuning hint, not a fault
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    exp_dir, ray_root = experiment_dirs(spec)
    init_ray(address)
    for condition in spec.condition_list():
        t0 = time.time()
        ran = run_condition(spec, exp_dir, ray_root, condition, verbose=verbose)
        status = f"done in {time.time() - t0:.0f} s" if ran else "already finished, skipped"
        print(f"[study] condition {condition_slug(condition)}: {status}", flush=True)
    report = write_report(exp_dir)
    print(f"[study] report: {report}", flush=True)
    return exp_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m study.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("space", help="study YAML (search_spaces/*.yaml)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny data, 3 epochs, 3 trials, 2 seeds, the first condition only: a check in under 2 "
                         "minutes (experiment name gets '-smoke')")
    ap.add_argument("--resume", action="store_true",
                    help="continue the interrupted experiment of the same name (finished conditions are skipped)")
    ap.add_argument("--address", default=None,
                    help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray on this machine)")
    ap.add_argument("--storage", default=None,
                    help="experiment root: a folder, a shared folder or s3://... (default: storage.path, 'runs')")
    ap.add_argument("--num-samples", type=int, default=None, help="trials per condition (search.num_samples)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a study key, e.g. --set trial.train.epochs=10 --set search.seed=1")
    ap.add_argument("--quiet", action="store_true", help="less Ray Tune progress output")
    args = ap.parse_args(argv)
    try:
        spec = resolve_spec(args.space, smoke=args.smoke, sets=args.sets, storage=args.storage,
                            num_samples=args.num_samples)
        try:
            check_data(spec)
        except ConfigError as exc:
            raise ConfigError(f"{args.space}: {exc}") from None
        spec = prepare_experiment(spec, args.resume)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from .tuner import Interrupted
    try:
        exp_dir = run_study(spec, address=args.address, verbose=0 if args.quiet else 1)
    except Interrupted as exc:
        print(f"[study] interrupted ({exc}); continue with: python -m study.run {args.space} --resume"
              f"{' --smoke' if args.smoke else ''}", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"[study] finished: {exp_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
