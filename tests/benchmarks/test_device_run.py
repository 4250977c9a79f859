"""The GPU run, on the CPU at a tiny size: benchmarks/device_bundle.py packs a small bundle (size limit
checked, labels lossless), benchmarks/device_run.sh (TINY=1) runs every stage from it with plain
python + torch and leaves well-formed results in at most 8 files directly under $OUT, and the code path
it runs imports without Ray, Optuna or W&B."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import device_bundle  # noqa: E402

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("ray", "optuna", "wandb", "cleanlab"):
            raise ImportError(f"{name} is not on the GPU machine")
sys.meta_path.insert(0, Block())
sys.path[:0] = ["benchmarks"]
import trainables.engine, trainables.run, throughput, gpu_share, device_table
cfg = trainables.config.load_trial_config("examples/tiny.yaml", ["train.epochs=1", "train.augment=false"])
trainables.engine.Trainer(cfg, trainables.engine.prepare_data(cfg)).run_epoch()
print("ok")
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, camvid_root) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "device_bundle"
    device_bundle.build(out, camvid_root, max_images=2)
    return out


def test_bundle_holds_the_project_smp_and_a_lossless_camvid_under_the_limit(bundle: Path, camvid_root: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert 0 < manifest["total_mib"] < device_bundle.LIMIT_MIB
    assert manifest["total_mib"] * 2**20 == pytest.approx(sum(f.stat().st_size for f in bundle.rglob("*")
                                                              if f.is_file() and f.name != "manifest.json"))
    assert (bundle / "src" / "trainables" / "engine.py").is_file()
    assert (bundle / "src" / "benchmarks" / "device_run.sh").is_file()
    assert (bundle / "site" / "segmentation_models_pytorch" / "__init__.py").is_file()
    assert not list(bundle.rglob("__pycache__"))
    cam = bundle / "data" / "camvid" / "CamVid"
    lines = (cam / "train.txt").read_text().split()
    assert len(lines) == 4 and lines[0].endswith(".webp") and lines[1].endswith(".png")
    for image, mask in zip(lines[::2], lines[1::2]):
        rel_mask = mask.removeprefix("/SegNet/CamVid/")
        original = np.asarray(Image.open(camvid_root / "CamVid" / rel_mask))
        assert np.array_equal(np.asarray(Image.open(cam / rel_mask)), original)  # labels: lossless
        decoded = Image.open(cam / image.removeprefix("/SegNet/CamVid/")).convert("RGB")
        assert decoded.size == (480, 360)  # full size
    assert manifest["camvid"]["psnr_db"]["train"]["min"] > 35
    with pytest.raises(SystemExit, match="over the 1 MiB limit"):
        device_bundle.build(bundle.parent / "too_big", camvid_root, max_images=2, limit_mib=1)


def test_the_device_code_path_imports_without_ray_optuna_wandb() -> None:
    res = subprocess.run([sys.executable, "-c", BLOCK], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


def test_device_run_on_cpu_at_a_tiny_size(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "BUNDLE": str(bundle), "TINY": "1", "DEVICE": "cpu",
           "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(REPO / "benchmarks" / "device_run.sh")], capture_output=True, text=True,
                         env=env, timeout=900)
    log = (out / "log.txt").read_text() if (out / "log.txt").is_file() else ""
    assert res.returncode == 0, res.stderr[-2000:] + log[-4000:]
    stages = [line.split() for line in (out / "stages.txt").read_text().splitlines()]
    assert [s[:2] for s in stages] == [["env", "0"], ["throughput", "0"], ["gpu_share", "0"], ["table", "0"]], log[-4000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() for p in out.iterdir()), files  # what the device tool returns
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files), files
    env_txt = (out / "env.txt").read_text()
    assert "ray not loaded" in env_txt and "optuna not loaded" in env_txt
    assert f"from {bundle}/site/segmentation_models_pytorch" in env_txt  # smp from the bundle
    tp = json.loads((out / "throughput.json").read_text())["datasets"]["camvid"]
    assert tp["size"] == [64, 96]
    for ratio in ("engine ce / raw (img/s)", "full epoch / raw train time", "full epoch, train_pass / raw train time",
                  "adele / ce epoch time"):
        assert tp["ratios"][ratio] > 0, ratio
    share = json.loads((out / "gpu_share.json").read_text())
    assert sorted(share["median"]) == ["1", "2"] and all(v > 0 for v in share["median"].values())
    assert [len(share["peak_memory_per_trial"][n]) for n in ("1", "2")] == [1, 2]
    assert all(p["host_max_rss_mib"] > 50 for p in share["peak_memory_per_trial"]["2"])
    table = json.loads((out / "table.json").read_text())
    assert table["final"] and table["epochs"] == 1
    assert {v: (e["finished"], e["trials"]) for v, e in table["table"].items()} == \
        {"ce": (1, 1), "adele": (1, 1), "adele_global": (1, 1)}
    assert all(0 <= e["best_val"][0] <= 1 for e in table["table"].values())
    assert {r["trial"] for r in table["rows"]} == {"ce-seed0", "adele-seed0", "adele_global-seed0"}
    md = (out / "table.md").read_text()
    assert "| ce | 1/1 |" in md and "| adele_global | 1/1 |" in md


def test_table_epochs_fit_the_deadline_from_measured_epoch_times() -> None:
    import device_table

    throughput = {"datasets": {"camvid": {"median_s": {"raw": 1.0, "ce": 1.0, "full epoch": 1.5, "adele": 4.0}}}}
    trials = {"ce": 3, "adele": 3, "adele_global": 3}
    # one epoch of all 9 trials one after another: 3 x 1.5 + 6 x (4.0 + 0.5) = 31.5 s
    epochs, why = device_table.budget_epochs(40 + 315, throughput, None, trials, 60)
    assert epochs == 10 and "31.5 s" in why
    share = {"median": {"1": 100.0, "2": 150.0, "4": 200.0}}  # 4 at once: 2x the work per second
    assert device_table.budget_epochs(40 + 315, throughput, share, trials, 60)[0] == 20
    assert device_table.budget_epochs(40 + 315, throughput, share, trials, 12)[0] == 12
    assert device_table.budget_epochs(300, None, None, trials, 60)[0] == 10
