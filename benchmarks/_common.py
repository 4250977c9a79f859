"""Shared pieces of the benchmarks: the machine they ran on, device-synchronised timing, the
benchmark trial configs (the main job's synthetic trial and CamVid at a fixed size)."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import torch

from trainables.config import TrialConfig, load_trial_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID_ROOT = os.path.join(os.path.dirname(REPO), "shared", "data", "camvid")
SIZES = {"cpu": (96, 128), "cuda": (360, 480)}  # CamVid: reduced on CPU, native on a GPU
CAMVID_IMAGES = {"cpu": {"train": 48, "val": 16, "test": 16}, "cuda": None}  # None: every image


def machine(device: str) -> str:
    """'<CPU model>, <n> cores' (lscpu), plus the GPU name on CUDA."""
    model, cores = platform.processor() or "unknown CPU", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = int(fields.get("CPU(s)", cores))
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    text = f"{model}, {cores} cores, torch {torch.__version__}"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def clock(device: str, name: str = "auto") -> Callable[[], float]:
    """``wall``: time.perf_counter; ``cpu``: this process's CPU time (time.process_time), which other
    processes loading a shared machine barely change (with torch threads = 1 it is the work done);
    ``auto``: cpu on a CPU device, wall on a GPU (whose work the CPU time does not see)."""
    if name == "auto":
        name = "wall" if device.startswith("cuda") else "cpu"
    return time.perf_counter if name == "wall" else time.process_time


def timed(fn: Callable[[], object], device: str, now: Callable[[], float] = time.perf_counter) -> float:
    """Seconds of ``fn()`` on the clock ``now``, the device's queued work included."""
    sync(device)
    t = now()
    fn()
    sync(device)
    return now() - t


def median(values: list[float]) -> float:
    return statistics.median(values)


def dataset_config(name: str, device: str, overrides: list[str], *, size: tuple[int, int] | None = None,
                   camvid_root: str = CAMVID_ROOT) -> TrialConfig:
    """The benchmark trial: ``synthetic`` = the main job's trial (examples/synthetic.yaml), ``camvid``
    = examples/camvid.yaml at a fixed size (reduced on CPU); CE, on ``device``."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    sets = [f"train.device={device}", "method.name=ce"]
    if name == "synthetic":
        path = os.path.join(REPO, "examples", "synthetic.yaml")
        if size:
            sets.append(f"dataset.size=[{size[0]}, {size[1]}]")
    elif name == "camvid":
        path = os.path.join(REPO, "examples", "camvid.yaml")
        h, w = size or SIZES[kind]
        sets += [f"dataset.root={camvid_root}", f"dataset.size=[{h}, {w}]"]
        limit = CAMVID_IMAGES[kind]
        if limit:
            sets.append("dataset.max_images={" + ", ".join(f"{k}: {v}" for k, v in limit.items()) + "}")
    else:
        raise SystemExit(f"error: --datasets: unknown dataset {name!r}; allowed: synthetic, camvid")
    return load_trial_config(path, sets + overrides)
