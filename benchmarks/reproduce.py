"""Reproduce the papers' claims with the framework's own studies (``search_spaces/paper/*.yaml``).

    python benchmarks/reproduce.py                      # every protocol, synthetic and CamVid, CPU scale
    python benchmarks/reproduce.py --only adele_ablation --dataset synthetic
    python benchmarks/reproduce.py --device cuda --scale full   # the GPU version (no Ray needed there)
    python benchmarks/reproduce.py --tables-only        # rebuild docs/reproduce.md from finished studies

Each study is a no-search study (the method sheet's defaults) with baselines and 3 fresh seeds, run
by ``python -m study.run`` (``--resume`` once started: finished conditions and replicates are kept, so a rerun
continues where it stopped). With ``--device cuda`` the replicates run as single-trial CLI
processes, ``--workers`` at a time on the one GPU, into the same experiment layout, so the study's
report reads them (Ray cannot be carried to the GPU machine). Then the protocols' tables, figures,
wall times and verdicts are written to ``docs/reproduce.md`` and ``docs/figures/reproduce/``.

Protocols: 1 early learning vs memorisation and 2-3 ADELE Tables 1-2 (``adele_ablation``), 4 ADELE
Fig. 7 (``adele_levels``), 5 LNCIS (``lncis_symmetric``, ``lncis_asymmetric``), 6 PU (``pu_drop30``,
``pu_drop50``, ``pu_misannotate``). Verdicts compare test mIoU at the best-validation epoch
(never selected on test) by the paired per-seed difference and its 95% interval.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import _reproduce_tables as tables  # noqa: E402

STUDIES = {  # study stem -> the protocols it serves
    "adele_ablation": (1, 2, 3), "adele_levels": (4,), "lncis_symmetric": (5,), "lncis_asymmetric": (5,),
    "pu_drop30": (6,), "pu_drop50": (6,), "pu_misannotate": (6,),
}
DATASETS = ("synthetic", "camvid")
# --scale full: CamVid as the papers train (native size, every image, a full-depth UNet); the
# synthetic studies are already at their full scale
FULL = {"camvid": ["trial.dataset.size=[352, 480]", "trial.dataset.max_images=null", "trial.model.kwargs={}",
                   "trial.train.epochs=60", "trial.train.lr=0.001", "trial.train.batch_size=8"]}


def spec_path(stem: str, dataset: str) -> Path:
    return REPO / "search_spaces" / "paper" / f"{stem}{'' if dataset == 'synthetic' else '_' + dataset}.yaml"


def overrides(dataset: str, scale: str, device: str, executor: str, storage: str, camvid_root: str | None) -> list[str]:
    sets = [f"storage.path={storage}"]
    if scale == "full":
        sets += FULL.get(dataset, [])
    if dataset != "synthetic" and camvid_root:
        sets.append(f"trial.dataset.root={camvid_root}")
    if device == "cuda":
        sets.append("trial.train.device=cuda")
        if executor == "study":  # Ray packs 4 trials per GPU; the local executor runs --workers at a time
            sets.append("resources.gpu=0.25")
    return sets


def load(stem: str, dataset: str, sets: list[str], scale: str):
    from study.spec import apply_study_overrides, parse_study
    from trainables.config import read_yaml

    path = spec_path(stem, dataset)
    spec = parse_study(apply_study_overrides(read_yaml(path), sets), str(path))
    if scale == "full" and dataset in FULL:
        spec.name += "-full"
    return spec


def record_wall(exp_dir: Path, seconds: float, finished: bool) -> None:
    """Append one run's wall time to ``<experiment>/reproduce_wall.json`` (a resumed study adds up)."""
    path = exp_dir / "reproduce_wall.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    runs.append({"seconds": round(seconds, 1), "finished": finished, "at": time.strftime("%Y-%m-%d %H:%M:%S")})
    exp_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")


def run_with_study(path: Path, spec, sets: list[str]) -> bool:
    """``python -m study.run PATH`` with the overrides (``--resume`` once its experiment exists: a
    resume of no experiment is refused); True when it finished."""
    started = (Path(spec.storage.path).expanduser() / spec.name / "study.yaml").is_file()
    cmd = [sys.executable, "-m", "study.run", str(path), *(["--resume"] if started else []), "--quiet",
           *sum((["--set", s] for s in sets), []), "--set", f"name={spec.name}"]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO).returncode == 0


def run_local(spec, workers: int) -> bool:
    """The study's replicates as single-trial CLI processes (no Ray): each writes its metrics into
    ``<experiment>/<condition>-final/trial_<label>_s<seed>/`` as Ray would (study.results.write_trial)."""
    import yaml

    from study.replication import replicas, top_configs
    from study.results import final_dir, mark_done, read_results, write_trial
    from study.spec import condition_slug, with_condition
    from trainables.tune_adapter import with_values

    exp_dir = Path(spec.storage.path) / spec.name
    exp_dir.mkdir(parents=True, exist_ok=True)
    if not (exp_dir / "study.yaml").exists():
        (exp_dir / "study.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    jobs = []
    for condition in spec.condition_list():
        slug = condition_slug(condition)
        base = with_condition(spec, condition)
        for rep in replicas(spec, top_configs(spec, [])):
            tdir = final_dir(exp_dir, slug) / f"trial_{rep['label']}_s{rep['seed']}"
            jobs.append((tdir, base, rep))

    def one(job) -> bool:
        tdir, base, rep = job
        if (tdir / "run" / "summary.json").exists():
            return True
        tdir.mkdir(parents=True, exist_ok=True)
        write_trial(tdir, {"trial": base, "replica": rep}, [])
        (tdir / "trial.yaml").write_text(yaml.safe_dump(with_values(base, rep["overrides"]), sort_keys=False))
        cmd = [sys.executable, "-m", "trainables.run", str(tdir / "trial.yaml"), "--out", str(tdir / "run"), "--quiet"]
        if (tdir / "run" / "config.yaml").exists():
            cmd.append("--resume")
        ok = subprocess.run(cmd, cwd=REPO).returncode == 0
        write_trial(tdir, {"trial": base, "replica": rep}, read_results(tdir / "run" / "metrics.jsonl"),
                    error=None if ok else f"trainables.run exited with an error; see {tdir / 'run'}")
        return ok

    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(one, jobs))
    if all(done):
        for condition in spec.condition_list():
            mark_done(exp_dir, condition, [], [], condition_slug(condition), local=True)
    return all(done)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(STUDIES), default=list(STUDIES), metavar="STUDY",
                    help=f"studies to run (default: all): {', '.join(STUDIES)}")
    ap.add_argument("--dataset", nargs="+", choices=DATASETS, default=list(DATASETS))
    ap.add_argument("--scale", choices=("cpu", "full"), default="cpu",
                    help="cpu: the sizes in the YAMLs (CamVid reduced to 72x96, 64 training images); "
                         "full: CamVid at 352x480, every image, a full-depth UNet, 60 epochs")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: replicates as single-trial processes on the GPU (no Ray needed)")
    ap.add_argument("--executor", choices=("study", "local"), default=None,
                    help="study: python -m study.run (Ray; the default on CPU); local: single-trial processes "
                         "without Ray (the default with --device cuda)")
    ap.add_argument("--workers", type=int, default=4, help="concurrent trials of the local executor")
    ap.add_argument("--storage", default="runs/paper", help="experiment root (default runs/paper)")
    ap.add_argument("--camvid-root", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra study override for every study, e.g. --set trial.train.epochs=2 (a smoke run)")
    ap.add_argument("--tables-only", action="store_true", help="only rebuild the tables from finished studies")
    ap.add_argument("--out", default=str(REPO / "docs" / "reproduce.md"))
    args = ap.parse_args(argv)
    os.chdir(REPO)
    executor = args.executor or ("local" if args.device == "cuda" else "study")
    from trainables.errors import UserError

    studies = []
    try:
        for dataset in args.dataset:
            sets = overrides(dataset, args.scale, args.device, executor, args.storage, args.camvid_root) + args.sets
            for stem in args.only:
                studies.append((stem, dataset, sets, load(stem, dataset, sets, args.scale)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from study.results import done_marker

    failed = []
    if not args.tables_only:
        for stem, dataset, sets, spec in studies:
            exp_dir = Path(spec.storage.path) / spec.name
            if all(done_marker(exp_dir, s).exists() for s in map(_slug, spec.condition_list())) \
                    and (exp_dir / "report" / "report.md").exists():
                print(f"[reproduce] {spec.name}: finished, kept", flush=True)
                continue
            t0 = time.time()
            ok = run_local(spec, args.workers) if executor == "local" else run_with_study(spec_path(stem, dataset), spec, sets)
            record_wall(exp_dir, time.time() - t0, ok)
            if not ok:
                failed.append(spec.name)
    # the figures go beside the page that links them (figures/reproduce/ relative to --out), so a run
    # with --out elsewhere (the tests, a spliced rerun) never overwrites the docs' figures
    out = Path(args.out)
    written = tables.write(studies, out, out.parent / "figures" / "reproduce", STUDIES, args)
    print(f"[reproduce] {written}", flush=True)
    if failed:
        print(f"[reproduce] unfinished: {', '.join(failed)}; run the same command again to continue", file=sys.stderr)
        return 1
    return 0


def _slug(condition: dict) -> str:
    from study.spec import condition_slug

    return condition_slug(condition)


if __name__ == "__main__":
    sys.exit(main())
