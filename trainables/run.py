"""Single-trial CLI: ``python -m trainables.run [CONFIG.yaml] [--set key=value ...] [--out DIR] [--resume]``.

Runs one trial without Ray. Results go to ``--out`` (default ``runs/<config name>``):
``config.yaml`` (the resolved config, re-runnable as is), ``metrics.jsonl`` (one JSON object per
epoch), ``checkpoints/epoch_NNNN/`` (after every epoch, the last 3 kept), ``summary.json`` at the end.
Bad input prints one line naming the key or file and exits with status 2, before anything is written.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .errors import UserError

KEEP_CHECKPOINTS = 3


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run directory, oldest first."""
    root = out / "checkpoints"
    found = [p for p in root.glob("epoch_*") if (p / "state.pt").is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


class FileReporter:
    """Appends each epoch's metrics as a JSON line and keeps the last checkpoints under ``out``."""

    def __init__(self, out: Path, total_epochs: int, quiet: bool = False):
        self.out = out
        self.total = total_epochs
        self.quiet = quiet
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    def report(self, metrics: dict, checkpoint_dir: str, images: dict | None = None) -> None:
        epoch = metrics["epoch"]
        # metrics first, then the checkpoint: a crash in between leaves a metrics line that the
        # resume drops (it lies beyond the last checkpoint), never a checkpoint without its metrics
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        target = self.out / "checkpoints" / f"epoch_{epoch:04d}"
        if target.exists():
            shutil.rmtree(target)
        shutil.move(checkpoint_dir, target)
        for old in checkpoints(self.out)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        if not self.quiet:
            print(_epoch_line(metrics, self.total), flush=True)


def _fmt(v) -> str:
    return "  n/a" if v is None else f"{v:.3f}"


def _epoch_line(m: dict, total: int) -> str:
    parts = [f"epoch {m['epoch']}/{total}", f"loss {m['train_loss']:.4f}", f"train mIoU {_fmt(m['train_miou'])}",
             f"IoU_el {_fmt(m['iou_el'])}", f"IoU_m {_fmt(m['iou_m'])}", f"label mIoU {_fmt(m['label_miou'])}"]
    if "val_miou" in m:
        parts += [f"val mIoU {_fmt(m['val_miou'])}", f"test mIoU {_fmt(m['test_miou'])}"]
    parts.append(f"{m['images_per_s']:.1f} img/s")
    return " | ".join(parts)


def _truncate_metrics(out: Path, epoch: int) -> None:
    """Drop metric lines written after the checkpoint we resume from."""
    path = out / "metrics.jsonl"
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epoch]
    _atomic_write(path, "".join(ln + "\n" for ln in lines))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainables.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="trial YAML, or a study YAML (its trial: block is used); "
                                              "omitted: the built-in synthetic default")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set train.epochs=5 --set noise.0.rate=0.3")
    ap.add_argument("--out", type=Path, help="result directory (default: runs/<config name>)")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    ap.add_argument("--images-every", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from .config import dump_trial_config, load_trial_config

    cfg = load_trial_config(args.config, args.overrides)
    out = args.out or Path("runs") / (Path(args.config).stem if args.config else "default")
    resume_from = None
    if args.resume:
        found = checkpoints(out)
        if not found:
            raise UserError(f"--resume: no checkpoint in {out / 'checkpoints'}; start without --resume")
        resume_from = found[-1]
    elif (out / "config.yaml").exists() or (out / "metrics.jsonl").exists():
        raise UserError(f"--out {out}: holds an earlier run; use --resume to continue it or choose another --out")

    # Everything that can fail on user input happens before the first file is written: decode the
    # data, build the model and method (Trainer), then create the run directory.
    from .data import create_dataset
    from .engine import Trainer, prepare_data, run_trainer

    trainer = Trainer(cfg, prepare_data(cfg, create_dataset(cfg.dataset)))
    out.mkdir(parents=True, exist_ok=True)
    if resume_from is not None:
        _truncate_metrics(out, int(resume_from.name.split("_")[1]))
    else:
        _atomic_write(out / "config.yaml", dump_trial_config(cfg))
    print(f"noisyseg: {cfg.method.name} on {cfg.dataset.name} -> {out}"
          + (f" (resuming after {resume_from.name})" if resume_from else ""), flush=True)
    reporter = FileReporter(out, cfg.train.epochs, args.quiet)
    summary = run_trainer(trainer, reporter, resume_from=resume_from, progress=not args.quiet,
                          images_every=args.images_every, scratch_dir=out / "checkpoints")
    _atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    keys = ("best_val_miou", "best_val", "max_test", "last", "noise_miou", "label_miou")
    print("summary: " + ", ".join(f"{k} {_fmt(summary.get(k))}" for k in keys), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
