"""``python -m study.run SPACE.yaml``: run (or ``--resume``) a hyperparameter study, then its report.

Each condition (a combination of the ``conditions:`` values) is one Optuna study searched with Ray
Tune, then its top configurations are replicated with ``final.seeds``; finished conditions are
skipped on ``--resume``. The report (report.md, CSVs, figures, best trial YAMLs) is written at the
end into ``<storage>/<name>/report``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import yaml

import copy

from trainables import shipped
from trainables.catalog import list_command, version
from trainables.config import read_yaml
from trainables.errors import ConfigError, UserError
from trainables.paths import check_writable_dir, make_dir

from . import terminal
from .leftovers import stop_leftovers
from .lock import ExperimentLock
from .preflight import alive_nodes, check_resources, probe_cluster
from .spec import StudySpec, apply_study_overrides, condition_slug, load_study, parse_study, validate_study
from .trust import check_trusted

REPO = Path(__file__).resolve().parents[1]
SMOKE_DATA = {"synthetic": {"num_train": 16, "num_val": 8, "num_test": 8}}


def smoke_overrides(raw: dict) -> list[str]:
    """Shrink data, epochs, trials and conditions so the study takes a minute or two on 2 cores."""
    trial = raw.get("trial") or {}
    dataset = (trial.get("dataset") or {}).get("name", "synthetic")
    out = [f"name={raw.get('name', 'study')}-smoke", "trial.train.epochs=3", "trial.train.batch_size=8",
           "trial.train.threads=1", "trial.eval_every=1", "trial.dataset.size=[32, 32]",
           "search.max_concurrent=2", "scheduler.grace_period=1", "scheduler.max_t=null",
           "final.top_k=1", "resources.cpu=1", "logging.wandb.images_every=2"]
    if ((raw.get("search") or {}).get("num_samples")) != 0:  # a study without search stays without
        out.append("search.num_samples=3")
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


def resolve_spec(path: str, *, smoke: bool, sets: list[str], storage: str | None, num_samples: int | None,
                 plugins: list[str] = ()) -> StudySpec:
    path = shipped.resolve(path, "study")  # a shipped name (adele, paper/pu_drop30) or a path
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (name, parameters, trial, ...)")
    if plugins:  # --plugin: after the YAML's own, paths relative to the current folder
        from trainables.plugins import resolve

        own = raw.get("plugins") or []
        raw = {**raw, "plugins": [*(own if isinstance(own, list) else [own]), *(resolve(p) for p in plugins)]}
    extra = smoke_overrides(raw) if smoke else []
    extra += list(sets)
    if storage:
        extra.append(f"storage.path={storage}")
    if num_samples is not None:
        extra.append(f"search.num_samples={num_samples}")
    return parse_study(apply_study_overrides(raw, extra), path)


def experiment_dirs(spec: StudySpec) -> tuple[Path, str]:
    """(local folder of the study's own files, Ray's storage root for its experiments)."""
    root = spec.storage.path
    if "://" in root:
        return (Path("runs") / spec.name).resolve(), f"{root.rstrip('/')}/{spec.name}"
    exp = (Path(root).expanduser() / spec.name).resolve()
    return exp, str(exp)


def check_data(spec: StudySpec) -> None:
    """Datasets with files need ``dataset.root``: fail before anything is written."""
    ds = spec.condition({}).config.dataset  # the trial as configured
    if ds.name != "synthetic":
        root = ds.root
        if not root:
            raise ConfigError(f"trial.dataset.root: required for dataset {ds.name!r}; "
                              "pass --set trial.dataset.root=DIR (e.g. ../shared/data/camvid)")
        if "://" not in str(root) and not Path(root).expanduser().exists():
            raise ConfigError(f"trial.dataset.root: {root}: no such folder")


def choose_spec(spec: StudySpec, resume: bool) -> StudySpec:
    """The spec to run, reading only: the given one for a new experiment; on --resume the one stored
    in the experiment folder, whose storage is the folder being resumed (it may have been moved)."""
    exp_dir, _ = experiment_dirs(spec)
    stored = exp_dir / "study.yaml"
    if not stored.exists():
        if resume:  # as Ray's Tuner.restore and W&B's resume="must": nothing is started in its place
            raise UserError(f"--resume: no experiment at {exp_dir} (no {stored.name}); check --storage / the "
                            "folder, or run without --resume to start it")
        return spec
    if not resume:
        raise UserError(f"experiment {spec.name!r} already exists at {exp_dir}; pass --resume to continue it "
                        "or choose another name (--set name=...)")
    old = relocate(load_study(stored), exp_dir)
    if _comparable(old) != _comparable(spec):
        print(f"note: resuming with the spec stored in {stored} (it differs from the one given)", file=sys.stderr)
    return old


def _comparable(spec: StudySpec) -> dict:
    """The spec as a dict, its local storage as an absolute path (``runs/x`` given from the folder
    above it and the stored ``/abs/runs/x`` are the same experiment)."""
    d = spec.to_dict()
    path = str((d.get("storage") or {}).get("path") or "")
    if path and "://" not in path:
        d["storage"] = {**d["storage"], "path": str(Path(path).expanduser().resolve())}
    return d


def relocate(old: StudySpec, exp_dir: Path) -> StudySpec:
    """A stored spec whose experiment now lives at ``exp_dir``: storage.path (and an Optuna
    storage inside the old folder) follow the folder being resumed."""
    if "://" in old.storage.path:
        return old
    if old.name != exp_dir.name:
        raise UserError(f"{exp_dir}: the folder name differs from the study name {old.name!r} in its study.yaml; "
                        f"rename the folder back to {old.name}")
    recorded = (Path(old.storage.path).expanduser() / old.name).resolve()
    if recorded == exp_dir:
        return old
    new = copy.deepcopy(old)
    new.storage.path = str(exp_dir.parent)
    if old.storage.optuna and str(recorded) in old.storage.optuna:
        new.storage.optuna = old.storage.optuna.replace(str(recorded), str(exp_dir))
    from .relocation import record  # what Ray restores (search and searcher state) names the old place

    record(str(recorded), str(exp_dir))
    print(f"note: the experiment was moved from {recorded}; continuing it at {exp_dir}", file=sys.stderr)
    return new


def write_spec(spec: StudySpec) -> None:
    """Store the spec of a new experiment (after every check passed and Ray is connected)."""
    exp_dir, _ = experiment_dirs(spec)
    stored = exp_dir / "study.yaml"
    if not stored.exists():
        make_dir(exp_dir, "storage.path")
        stored.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))


def experiment_arg(path: str) -> tuple[str, str | None]:
    """``python -m study.run EXPERIMENT_DIR --resume``: the stored study.yaml and the storage root."""
    folder = Path(path).expanduser()
    if folder.is_dir() and (folder / "study.yaml").is_file():
        return str(folder / "study.yaml"), str(folder.resolve().parent)
    return path, None


def resume_hint(spec: StudySpec) -> str:
    """The command that continues this experiment, wherever it was started from: its folder (relative
    to the current one when inside it), which holds the spec it runs."""
    exp_dir, _ = experiment_dirs(spec)
    if "://" in spec.storage.path:
        return (f"python -m study.run {shlex.quote(str(exp_dir / 'study.yaml'))} --storage "
                f"{shlex.quote(spec.storage.path)} --resume")
    try:
        shown = str(exp_dir.relative_to(Path.cwd()))
    except ValueError:
        shown = str(exp_dir)
    return f"python -m study.run {shlex.quote(shown)} --resume"


def init_ray(address: str | None, plugins: list[str] | None = None) -> None:
    """Join (or start) Ray; ``plugins`` (resolved references) reach every worker through the job's
    runtime_env, packaged by Ray before this returns (trainables.plugins.runtime_env)."""
    import ray

    from trainables.plugins import describe, runtime_env

    if ray.is_initialized():  # connected by the pre-flight checks of main()
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    env = runtime_env(plugins or [])
    if address == "local":  # workers import the project from this checkout
        paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        ray.init(address="local", include_dashboard=False, configure_logging=False,
                 log_to_driver=terminal.log_to_driver(), runtime_env=env)
    else:  # nodes run the project installed (or on PYTHONPATH) where they were started
        ray.init(address=address, configure_logging=False, log_to_driver=terminal.log_to_driver(), runtime_env=env)
    if env:  # from here on the workers import the plugins from Ray, not from their paths
        print(f"[study] {describe(plugins)}: handed to Ray", flush=True)


def run_study(spec: StudySpec, *, address: str | None = None, verbose: int = 1) -> Path:
    from .parallel import conditions_at_once, run_side_by_side
    from .report import write_report
    from .results import done_marker
    from .tuner import run_condition, search_concurrency

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment state: at most 5 s old
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # trials checkpoint every epoch and synthetic epochs last seconds, so Ray's "excessive experiment
    # checkpoint sync" hint would repeat all run long; it is a tuning hint, not a fault
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # metric.name is checked before the start (study.spec.metric); a trial that diverged before its first
    # evaluation ends with a result without it, which Ray's strict check would turn into an error
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    exp_dir, ray_root = experiment_dirs(spec)
    init_ray(address, spec.plugins)
    pending = []
    for condition in spec.condition_list():
        if done_marker(exp_dir, condition_slug(condition)).exists():
            print(f"[study] condition {condition_slug(condition)}: already finished, skipped", flush=True)
        else:
            pending.append(condition)
    import ray

    at_once = conditions_at_once(spec, len(pending), ray.cluster_resources(), search_concurrency(spec))
    if at_once > 1:  # one condition's max_concurrent trials leave slots free: fill them with others
        run_side_by_side(spec, exp_dir, ray_root, pending, at_once, ray.get_runtime_context().gcs_address, verbose)
    else:
        for condition in pending:
            t0 = time.time()
            run_condition(spec, exp_dir, ray_root, condition, verbose=verbose)
            print(f"[study] condition {condition_slug(condition)}: done in {time.time() - t0:.0f} s", flush=True)
    report = write_report(exp_dir)
    print(f"[study] report: {report}", flush=True)
    return exp_dir


def parser() -> argparse.ArgumentParser:
    """The CLI's arguments (``python -m study.run --help``)."""
    ap = argparse.ArgumentParser(prog="python -m study.run", description=__doc__.replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("space", nargs="?", help="study YAML, a shipped study's name (adele, compare, paper/pu_drop30: "
                                             "search_spaces/NAME.yaml), or an experiment folder with --resume")
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
    ap.add_argument("--dry-run", action="store_true",
                    help="run every check (spec, data roots, storage, cluster resources), print the resolved search "
                         "space per condition, the trials, replicas and the budget in epochs; write and start nothing")
    out = ap.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true",
                     help="only the study's lines (conditions, finished trials, report), no live summary line")
    out.add_argument("--verbose", action="store_true",
                     help="also Ray's status tables and log lines, the trials' own output and W&B's run summaries")
    ap.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_FILE",
                    help="import a plugin that registers methods, noise kinds or datasets (a module name or a .py "
                         "file; repeatable; docs/plugins.md); a study YAML may list them under plugins:")
    ap.add_argument("--list", nargs="?", const="all", metavar="WHAT",
                    help="list methods, noise, datasets, archs or encoders with their parameters and defaults, "
                         "then exit (without WHAT: every list by name)")
    ap.add_argument("--version", action="version", version=f"noisyseg {version()}")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Parse, run what was asked (--list, --dry-run, a study), and map every outcome to one line and
    an exit status: 0 finished, 2 a user error, 130 interrupted (with the command that resumes)."""
    args = parser().parse_args(argv)
    try:
        started = start(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if isinstance(started, int):  # --list or --dry-run: done
        return started
    from .tuner import Interrupted
    try:
        exp_dir = run_study(started.spec, address=args.address, verbose=started.level)
    except Interrupted as exc:
        print(f"[study] interrupted ({exc}); continue with: {resume_hint(started.spec)}", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        started.lock.release()
    print(f"[study] finished: {exp_dir}")
    return 0


def start(args: argparse.Namespace) -> "_Started | int":
    """Everything before the study runs: plugins, --list, the terminal, --dry-run (its exit
    status), else the pre-flight checks and the estimate (the started study)."""
    from trainables.plugins import load as load_plugins

    load_plugins(args.plugins, where="--plugin")  # before --list: plugin names are listed too
    if args.list:
        return list_command(args.list)
    if args.space is None:
        raise UserError("give a study YAML (e.g. search_spaces/adele.yaml), or --list / --version")
    level = 0 if args.quiet else 2 if args.verbose else 1
    terminal.configure(level)
    os.umask(os.umask(0o022) | 0o022)  # files of the study are never group/other-writable (study.trust)
    if args.dry_run:
        return dry_run(args)
    started = preflight(args)
    started.level = level
    if started.fresh and not args.smoke:
        show_estimate(started.spec, experiment_dirs(started.spec)[0])
    return started


class _Started:
    """What main() needs after the pre-flight checks: the spec to run and the held lock."""

    def __init__(self, spec: StudySpec, lock: ExperimentLock, fresh: bool):
        self.spec, self.lock, self.fresh = spec, lock, fresh  # fresh: a new experiment (not resumed)
        self.level = 1  # terminal verbosity: 0 quiet, 1 the study's lines, 2 also Ray's


NO_ESTIMATE = "NOISYSEG_NO_ESTIMATE"  # set (to 1) to skip the calibration before a study starts


def show_estimate(spec: StudySpec, exp_dir: Path | None = None) -> None:
    """The study's estimated wall time on this machine (study.estimate), before it starts; skipped
    with NOISYSEG_NO_ESTIMATE=1 (the test suite) and for --smoke. With ``exp_dir`` (a started
    study) the calibrated epoch costs are kept there for the live ETA."""
    if os.environ.get(NO_ESTIMATE, "") not in ("", "0"):
        return
    from .estimate import estimate, render, write

    print("[study] calibrating (a few batches of each configuration) ...", flush=True)
    try:
        est = estimate(spec)
    except Exception as exc:  # noqa: BLE001 - an estimate is advice: the study runs without it
        print(f"[study] no estimate ({type(exc).__name__}: {exc}); the live ETA follows the trials", flush=True)
        return
    for line in render(est):
        print(f"[study] {line}", flush=True)
    if exp_dir is not None and "://" not in str(exp_dir):
        write(exp_dir, est)


def dry_run(args: argparse.Namespace) -> int:
    """``--dry-run``: the checks of :func:`checks` and the cluster's resources; then what would run."""
    from .dryrun import check_cluster, render

    spec, exp_dir, resuming = checks(args)
    cluster = check_cluster(spec, args.address)
    print(render(spec, args.space, exp_dir, cluster, resuming))
    if not args.smoke:
        show_estimate(spec)
    return 0


def preflight(args: argparse.Namespace) -> _Started:
    """Every check that can fail on user input, in the order that writes nothing before it passed:
    the spec (file, keys, metric, every combination), the storage location, the trust of a resumed
    folder, the lock (an existing experiment), the Ray connection and its resources; then the lock
    of a new experiment, the leftovers of a killed driver, and study.yaml."""
    spec, exp_dir, resuming = checks(args)
    lock = ExperimentLock.acquire(exp_dir) if resuming else None
    try:
        connect(args.address, spec)
        lock = lock or ExperimentLock.acquire(exp_dir)
    except BaseException:
        if lock is not None:
            lock.release()
        import ray

        if ray.is_initialized():
            ray.shutdown()
        raise
    stopped = stop_leftovers(lock.previous)
    if stopped:
        print(f"note: stopped {stopped} Ray process(es) left by the interrupted driver (pid "
              f"{lock.previous.get('pid')})", file=sys.stderr)
    session = local_session()
    if session:
        lock.update(ray_session=session)
    write_spec(spec)
    print(f"[study] {spec.name}: {len(spec.condition_list())} condition(s) -> {exp_dir}", flush=True)
    return _Started(spec, lock, fresh=not resuming)


def checks(args: argparse.Namespace) -> tuple[StudySpec, Path, bool]:
    """The checks that read only (a real start and --dry-run): the spec (file, keys, metric, every
    combination), its data root, the storage location, the trust of a resumed folder and whether it
    exists; returns (spec to run, experiment folder, resuming)."""
    if args.num_samples is not None and args.num_samples < 1:
        raise ConfigError(f"--num-samples: got {args.num_samples}; allowed: 1 or more trials per condition")
    space, folder_storage = experiment_arg(args.space)
    if folder_storage is not None and not args.resume:
        raise UserError(f"{args.space}: an experiment folder; pass --resume to continue it, or give a study YAML")
    storage = args.storage or folder_storage
    spec = resolve_spec(space, smoke=args.smoke and folder_storage is None, sets=args.sets, storage=storage,
                        plugins=args.plugins,
                        num_samples=args.num_samples)
    try:
        check_data(spec)
    except ConfigError as exc:
        raise ConfigError(f"{args.space}: {exc}") from None
    exp_dir, _ = experiment_dirs(spec)
    label = "--storage" if storage else "storage.path"
    if "://" not in spec.storage.path:
        check_writable_dir(spec.storage.path, label)
        check_writable_dir(exp_dir, "experiment folder")
    resuming = args.resume and (exp_dir / "study.yaml").is_file()
    if resuming and "://" not in spec.storage.path:
        check_trusted(exp_dir)  # before Ray unpickles anything from it
    spec = choose_spec(spec, args.resume)
    validate_study(spec)
    if spec.logging.wandb.mode != "disabled":
        from .wandb_log import check_mode

        check_mode(spec.logging.wandb.mode)
    return spec, exp_dir, resuming


def connect(address: str | None, spec: StudySpec) -> None:
    """Join (or start) Ray, then check that a node can run one trial; one line on any failure."""
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address != "local":
        probe_cluster(address)
    init_ray(address, spec.plugins)
    check_resources(spec.resources.cpu, spec.resources.gpu, alive_nodes(), where="resources")


def local_session() -> str | None:
    """The session folder of the local Ray this driver started (None when it joined a cluster)."""
    try:
        import ray

        node = ray._private.worker._global_node
        return node.get_session_dir_path() if node is not None and node.head else None
    except Exception:  # noqa: BLE001 - a private API: without it, no leftover cleanup
        return None


if __name__ == "__main__":
    sys.exit(main())
