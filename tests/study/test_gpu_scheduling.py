"""GPU scheduling without a GPU: a real Ray head on loopback that declares 2 logical GPUs
(``ray start --head --num-gpus 2``; the trials themselves run on the CPU, ``train.device: auto``).

- ``resources: {cpu: 0.5, gpu: 0.5}`` on 2 CPUs / 2 GPUs is 4 trial slots: two conditions of
  ``max_concurrent: 2`` run side by side, 4 trials at once, each trial with its own
  ``CUDA_VISIBLE_DEVICES`` (two trials per GPU), recorded in its results;
- a request no node can hold (``resources.gpu: 3``) is refused in one line before anything is written;
- a trial that asks ``train.device: cuda`` on a node without CUDA fails in one line naming the cause,
  no traceback, the study goes on (its other trial completes), and its Optuna trial is FAIL with the
  reason."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from tests.study.test_cluster import RAY, REPO, free_port, kill_session, trial_rows, wait_for
from study.preflight import probe_cluster

TRIAL = """
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 24, num_val: 4, num_test: 4}
  noise: [{kind: morph, rate: 1.0}]
  model: {kwargs: {encoder_depth: 3, decoder_channels: [16, 8, 4]}}
  train: {epochs: EPOCHS, batch_size: 8, threads: 1}
final: {seeds: [7], top_k: 0}
logging: {wandb: {mode: disabled}}
"""

SHARED = """
name: shared
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: random, seed: 0, num_samples: 2, max_concurrent: 2}
scheduler: {type: none}
resources: {cpu: 0.5, gpu: 0.5}
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  train.lr: {values: [0.01, 0.02]}
""" + TRIAL.replace("EPOCHS", "4")

CUDA = """
name: nocuda
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: grid, seed: 0, max_concurrent: 2}
scheduler: {type: none}
resources: {cpu: 0.5, gpu: 0.5}
parameters:
  train.device: {values: [cpu, cuda]}
""" + TRIAL.replace("EPOCHS", "1")


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory):
    """One head node on 127.0.0.1 with 2 CPUs and 2 logical GPUs; torn down by its session id."""
    tmp = tmp_path_factory.mktemp("gpucluster")
    temp = Path(tempfile.mkdtemp(prefix="rg", dir="/tmp"))  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_", "CUDA_"))}
    env.update(HOME=str(tmp), PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", RAY_DEDUP_LOGS="0")
    port = free_port()
    log = tmp / "head.log"
    proc = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--num-gpus=2",
                             f"--object-store-memory={200 * 2**20}", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"],
                            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Ray runtime started" in log.read_text() or proc.poll() is not None, 90, "the head node")
        assert proc.poll() is None, log.read_text()[-2000:]
        nodes = probe_cluster(f"127.0.0.1:{port}")
        assert [(n["CPU"], n["GPU"]) for n in nodes] == [(2.0, 2.0)]
        yield {"address": f"127.0.0.1:{port}", "env": env}
    finally:
        kill_session(proc.pid, signal.SIGTERM)  # ray start --block stops its node on SIGTERM
        time.sleep(2)
        kill_session(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def study(spec: str, tmp_path: Path, cluster: dict, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
    space = tmp_path / "space.yaml"
    space.write_text(textwrap.dedent(spec))
    return subprocess.run([sys.executable, "-m", "study.run", str(space), "--address", cluster["address"],
                           "--storage", str(tmp_path / "runs"), "--quiet", *extra],
                          cwd=REPO, env=cluster["env"], capture_output=True, text=True, timeout=timeout)


def test_four_trials_share_two_gpus_and_conditions_run_side_by_side(gpu_cluster, tmp_path: Path) -> None:
    t0 = time.time()
    res = study(SHARED, tmp_path, gpu_cluster)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    print(f"study: {time.time() - t0:.1f} s")
    assert "2 running side by side" in res.stdout
    exp = tmp_path / "runs" / "shared"
    spans, devices = [], []
    for slug in ("rate-0.5", "rate-1.0"):
        rows = trial_rows(exp / slug)
        assert len(rows) == 2 and all(r[-1]["epoch"] == 4 for r in rows.values()), rows.keys()
        for history in rows.values():
            seen = {r["cuda_visible_devices"] for r in history}
            assert len(seen) == 1, seen  # one GPU for the trial's whole life
            devices.append(seen.pop())
            spans.append((min(r["timestamp"] - r["time_this_iter_s"] for r in history),
                          max(r["timestamp"] for r in history)))
        ot = optuna.load_study(study_name=f"shared/{slug}", storage=f"sqlite:///{exp / 'optuna.db'}").trials
        assert [t.state.name for t in ot] == ["COMPLETE", "COMPLETE"]
    # Ray gave each trial half of one logical GPU: two trials on GPU 0, two on GPU 1
    assert sorted(devices) == ["0", "0", "1", "1"], devices
    # all four ran at once: every trial started before any ended (2 slots could not do that)
    assert max(s for s, _ in spans) < min(e for _, e in spans), spans


def test_what_no_node_holds_is_refused_and_a_cuda_trial_fails_in_one_line(gpu_cluster, tmp_path: Path) -> None:
    res = study(CUDA, tmp_path, gpu_cluster, "--set", "resources.gpu=3", timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "resources.gpu: 3 per trial" in err[0] and "GPU 2" in err[0], err
    assert not (tmp_path / "runs").exists()

    res = study(CUDA, tmp_path, gpu_cluster)
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out[-5000:]
    failed = [ln for ln in out.splitlines() if "CUDA is not available" in ln]
    assert len(failed) == 1 and "train.device" in failed[0] and "CUDA_VISIBLE_DEVICES=" in failed[0], out[-5000:]
    print(failed[0])
    exp = tmp_path / "runs" / "nocuda"
    rows = trial_rows(exp / "main")
    done = [r for r in rows.values() if r and r[-1].get("epoch") == 1 and not r[-1].get("failed")]
    assert len(done) == 1  # the study went on: the CPU trial trained
    ot = optuna.load_study(study_name="nocuda/main", storage=f"sqlite:///{exp / 'optuna.db'}").trials
    states = {t.params.get("train.device", json.dumps(t.params)): t for t in ot}
    assert states["cpu"].state.name == "COMPLETE"
    assert states["cuda"].state.name == "FAIL"
    assert "CUDA is not available" in states["cuda"].user_attrs.get("failure", ""), states["cuda"].user_attrs
