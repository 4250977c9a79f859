"""Single-trial CLI: ``python -m trainables.run [CONFIG.yaml] [--set key=value ...] [--out DIR] [--resume]``.

Runs one trial without Ray. Results go to ``--out`` (default ``runs/<config name>``):
``config.yaml`` (the resolved config, re-runnable as is), ``metrics.jsonl`` (one JSON object per
epoch), ``checkpoints/epoch_NNNN/`` (after every epoch, the last 3 kept), ``summary.json`` at the end.
Bad input prints one line naming the key or file and exits with status 2, before anything is written.
A trial whose training loss becomes non-finite stops there, is marked diverged in ``metrics.jsonl``
and ``summary.json``, and the CLI exits with status 3. A write that fails for lack of space prints one
line (the folder, its free space) and exits with status 4; earlier checkpoints stay, ``--resume`` continues.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from . import shipped
from .catalog import list_command, version
from .checkpoint import remove_staged
from .errors import DiskFullError, UserError, is_disk_full
from .paths import check_writable_dir, make_dir

KEEP_CHECKPOINTS = 3
EXIT_DIVERGED = 3  # the trial stopped on a non-finite loss (user errors exit 2)
EXIT_DISK_FULL = 4  # a write of the run failed for lack of space; free space, then --resume


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left behind (e.g. on a full disk)
        raise


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

    def report(self, metrics: dict, checkpoint_dir: str | None, images: dict | None = None) -> None:
        epoch = metrics["epoch"]
        # metrics first, then the checkpoint: a crash in between leaves a metrics line that the
        # resume drops (it lies beyond the last checkpoint), never a checkpoint without its metrics
        path = self.out / "metrics.jsonl"
        size = path.stat().st_size if path.exists() else 0
        try:
            with open(path, "a") as fh:
                fh.write(json.dumps(metrics) + "\n")
        except OSError:
            with contextlib.suppress(OSError):  # never leave a partial line (e.g. on a full disk)
                os.truncate(path, size)
            raise
        if checkpoint_dir is None:  # the epoch the trial diverged at: nothing worth keeping
            if not self.quiet:
                print(f"epoch {epoch}/{self.total} | {metrics.get('diverged_reason', 'diverged')}", flush=True)
            return
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
    ap = argparse.ArgumentParser(prog="python -m trainables.run", description=__doc__.replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="trial YAML, a shipped example's name (tiny, synthetic, camvid: "
                                              "examples/NAME.yaml), or a study YAML (its trial: block is used); "
                                              "omitted: the built-in synthetic default")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set train.epochs=5 --set noise.0.rate=0.3")
    ap.add_argument("--out", type=Path, help="result directory (default: runs/<config name>)")
    ap.add_argument("--resume", action="store_true",
                    help="continue from the last checkpoint in --out (without CONFIG: the run's config.yaml); a "
                         "run killed before its first checkpoint starts over with the same config; --out "
                         "without a config.yaml is refused (exit 2)")
    ap.add_argument("--images-every", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    ap.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_FILE",
                    help="import a plugin that registers methods, noise kinds or datasets (a module name or a .py "
                         "file; repeatable; docs/plugins.md); a YAML may list them under plugins:")
    ap.add_argument("--list", nargs="?", const="all", metavar="WHAT",
                    help="list methods, noise, datasets, archs or encoders with their parameters and defaults, "
                         "then exit (without WHAT: every list by name)")
    ap.add_argument("--version", action="version", version=f"noisyseg {version()}")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from .plugins import load as load_plugins

        load_plugins(args.plugins, where="--plugin")  # before --list: plugin names are listed too
        if args.list:
            return list_command(args.list)
        return _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DiskFullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DISK_FULL
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from .config import dump_trial_config, load_trial_config

    out = args.out or Path("runs") / (Path(args.config).stem if args.config else "default")
    config = shipped.resolve(args.config, "trial") if args.config else None  # a shipped name (tiny) or a path
    if args.resume and not (out / "config.yaml").is_file():
        raise UserError(f"--resume: no run in {out} (no {out / 'config.yaml'}); start it without --resume")
    if config is None and args.resume:
        config = out / "config.yaml"  # --resume without CONFIG: the run's own config
    cfg = load_trial_config(config, args.overrides)
    check_writable_dir(out, "--out")
    resume_from = None
    if args.resume:
        _refuse_diverged(out)
        found = checkpoints(out)
        if found:
            resume_from = found[-1]
        else:
            # killed before its first checkpoint: nothing to continue, start over with the same config
            _check_same_config(cfg, out / "config.yaml")
            print(f"note: no checkpoint in {out / 'checkpoints'}; starting the run from scratch", file=sys.stderr)
    elif (out / "config.yaml").exists() or (out / "metrics.jsonl").exists():
        raise UserError(f"--out {out}: holds an earlier run; use --resume to continue it or choose another --out")

    # Everything that can fail on user input happens before the first file is written: decode the
    # data, build the model and method (Trainer), then create the run directory.
    from .data import create_dataset
    from .engine import Trainer, prepare_data, run_trainer

    trainer = Trainer(cfg, prepare_data(cfg, create_dataset(cfg.dataset)))
    make_dir(out, "--out")
    _remove_debris(out)  # what writes a crash interrupted left behind
    if resume_from is not None:
        _truncate_metrics(out, int(resume_from.name.split("_")[1]))
    else:
        (out / "metrics.jsonl").unlink(missing_ok=True)  # lines of a run killed before its first checkpoint
        from .plugins import loaded

        _atomic_write(out / "config.yaml", dump_trial_config(cfg, loaded()))  # names the plugins it needs
    print(f"noisyseg: {cfg.method.name} on {cfg.dataset.name} -> {out}"
          + (f" (resuming after {resume_from.name})" if resume_from else ""), flush=True)
    try:
        reporter = FileReporter(out, cfg.train.epochs, args.quiet)
        summary = run_trainer(trainer, reporter, resume_from=resume_from, progress=not args.quiet,
                              images_every=args.images_every, scratch_dir=out / "checkpoints")
        _atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    except (OSError, RuntimeError) as exc:
        if not is_disk_full(exc):
            raise
        _remove_debris(out)  # the staged checkpoint and *.tmp of the failed write
        try:
            free = shutil.disk_usage(out).free
        except OSError:
            free = None
        raise DiskFullError(out, free) from None
    _remove_debris(out)
    if summary.get("diverged"):
        print(f"error: diverged at epoch {summary['diverged_epoch']}: {summary['diverged_reason']}; the run "
              f"stopped (see {out / 'summary.json'}); lower train.lr or use another --out", file=sys.stderr)
        return EXIT_DIVERGED
    keys = ("best_val_miou", "best_val", "max_test", "last", "noise_miou", "label_miou")
    print("summary: " + ", ".join(f"{k} {_fmt(summary.get(k))}" for k in keys), flush=True)
    return 0


def _remove_debris(out: Path) -> None:
    """Staged checkpoints (``checkpoints/ckpt-*``) and half-written ``*.tmp`` files of a killed run."""
    remove_staged(out / "checkpoints")
    for tmp in out.glob("*.tmp"):
        tmp.unlink(missing_ok=True)


def _refuse_diverged(out: Path) -> None:
    """A diverged run is finished: resuming it would only diverge again."""
    path = out / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return
    if isinstance(summary, dict) and summary.get("diverged"):
        raise UserError(f"--resume: the run in {out} diverged at epoch {summary.get('diverged_epoch')} "
                        f"({summary.get('diverged_reason')}); start a new --out with a lower train.lr")


def _check_same_config(cfg, stored: Path) -> None:
    """Starting over must use the config the interrupted run was started with."""
    if not stored.is_file():
        return
    from .config import load_trial_config
    from .engine import _comparable

    mine, theirs = _comparable(cfg.to_dict()), _comparable(load_trial_config(stored).to_dict())
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        raise UserError(f"--resume: {stored} was written with a different config ({', '.join(diff[:5])} differ); "
                        "resume with the config the run was started with (or omit CONFIG to use it)")


if __name__ == "__main__":
    sys.exit(main())
