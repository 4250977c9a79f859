"""A real two-node Ray cluster on loopback with token authentication (as Ray 2.60 sets it up:
RAY_AUTH_MODE=token on every node and client, the token in RAY_AUTH_TOKEN): a client without the
token is refused in one line, a request no node can satisfy is refused before anything is written,
and a study whose worker node is killed mid-trial completes with that trial retried on the head."""
from __future__ import annotations

import json
import os
import secrets
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

from study.failures import trial_failure
from study.preflight import probe_cluster
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
EPOCHS = 5

SPEC = f"""
name: twonode
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: 2, max_concurrent: 2}}
scheduler: {{type: none}}
resources: {{cpu: 1, gpu: 0}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 16, num_val: 4, num_test: 4}}
  model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
  train: {{epochs: {EPOCHS}, batch_size: 8, threads: 1}}
parameters:
  train.lr: {{values: [0.01, 0.02]}}
final: {{seeds: [7], top_k: 0}}
logging: {{wandb: {{mode: disabled}}}}
"""


def session_pids(sid: int) -> list[int]:
    """Processes of the process session ``sid`` (a node started with start_new_session)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def kill_session(sid: int, sig: int = signal.SIGKILL) -> None:
    for pid in session_pids(sid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path):
    """Head (1 CPU) + worker node (1 CPU) on 127.0.0.1, token auth; torn down by session id."""
    token = secrets.token_hex(16)
    home = tmp_path / "home"
    home.mkdir()
    temp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths must fit
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env = {**base, "HOME": str(home), "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           # a dead node is noticed in seconds, not the default half minute
           "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
           "RAY_health_check_failure_threshold": "3"}
    port = free_port()
    common = ["--block", "--num-cpus=1", "--num-gpus=0", f"--object-store-memory={200 * 2**20}",
              "--disable-usage-stats", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"]
    nodes = {}
    try:
        for name, extra in (("head", ["--head", f"--port={port}", "--include-dashboard=false"]),
                            ("worker", [f"--address=127.0.0.1:{port}"])):
            log = open(tmp_path / f"{name}.log", "w")
            proc = subprocess.Popen([RAY, "start", *extra, *common], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            nodes[name] = proc
            wait_for(lambda: "Ray runtime started" in (tmp_path / f"{name}.log").read_text()
                     or proc.poll() is not None, 90, f"the {name} node")
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-2000:]
        old = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        try:
            wait_for(lambda: len(probe_cluster(f"127.0.0.1:{port}")) == 2, 60, "two alive nodes")
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        yield {"address": f"127.0.0.1:{port}", "env": env, "nodes": nodes, "home": home}
    finally:
        for proc in nodes.values():  # ray start --block stops its node on SIGTERM
            kill_session(proc.pid, signal.SIGTERM)
        time.sleep(2)
        for proc in nodes.values():
            kill_session(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def study_cli(args: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study.run", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def trial_rows(exp: Path) -> dict[str, list[dict]]:
    out = {}
    for f in exp.glob("trial_*/result.json"):
        rows = []
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        out[f.parent.name] = rows
    return out


def test_two_node_cluster_with_token_auth(cluster, tmp_path):
    space = tmp_path / "twonode.yaml"
    space.write_text(textwrap.dedent(SPEC))
    storage = tmp_path / "runs"
    address = cluster["address"]

    # 1. a client without the token: one line saying what to set, nothing written, and no waiting out
    # ray.init's minutes of retries (the probe gives up after CONNECT_TIMEOUT_S, 30 s; a client that
    # retried would run into this call's timeout and fail the test: no wall-time assertion, which a
    # loaded host would break)
    no_auth = {k: v for k, v in cluster["env"].items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    t0 = time.time()
    res = study_cli([str(space), "--address", address, "--storage", str(storage)], no_auth, timeout=180)
    assert res.returncode == 2, res.stderr[-3000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --address") and "RAY_AUTH_MODE=token" in err[0], err
    assert not storage.exists()
    print(f"auth refused in {time.time() - t0:.1f} s")

    # 2. a GPU per trial on a cluster without GPUs: refused before anything is written
    res = study_cli([str(space), "--address", address, "--storage", str(storage), "--set", "resources.gpu=1"],
                    cluster["env"], timeout=120)
    assert res.returncode == 2, res.stderr[-3000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "resources.gpu: 1 per trial" in err[0] and "GPU 0" in err[0], err
    assert not storage.exists()

    # 3. the study, with the worker node killed while it trains a trial
    worker_sid = cluster["nodes"]["worker"].pid
    proc = subprocess.Popen([sys.executable, "-m", "study.run", str(space), "--address", address,
                             "--storage", str(storage), "--quiet"], cwd=REPO, env=cluster["env"],
                            stdout=open(tmp_path / "study.log", "w"), stderr=subprocess.STDOUT)
    exp = storage / "twonode" / "main"
    try:
        def on_worker():  # a trial process of the worker node that has finished an epoch, not its last
            for name, rows in trial_rows(exp).items():
                if rows and 1 <= rows[-1]["epoch"] < EPOCHS - 1 and rows[-1]["pid"] in session_pids(worker_sid):
                    return name
            assert proc.poll() is None, (tmp_path / "study.log").read_text()[-3000:]
            return None

        t0 = time.time()
        victim = wait_for(on_worker, 120, "a trial running on the worker node")
        kill_session(worker_sid)  # the node dies: raylet, agents and the trial's worker process
        print(f"worker killed {time.time() - t0:.1f} s after the study started")
        assert proc.wait(timeout=240) == 0, (tmp_path / "study.log").read_text()[-4000:]
        print(f"study finished {time.time() - t0:.1f} s after it started")
    finally:
        if proc.poll() is None:
            proc.kill()

    rows = trial_rows(exp)
    assert len(rows) == 2
    for name, history in rows.items():
        assert history[-1]["epoch"] == EPOCHS, (name, history[-1])
    victim_dir = exp / victim
    assert (victim_dir / "error.txt").is_file()  # the failure was recorded...
    assert trial_failure(victim_dir, rows[victim][-1]) is None  # ...and the retry finished the trial
    restored = [r for r in rows[victim] if r["iterations_since_restore"] < r["training_iteration"]]
    assert restored, "the retried trial did not continue from its checkpoint"
    assert restored[0]["epoch"] > 1 and [r["epoch"] for r in restored] == list(range(restored[0]["epoch"], EPOCHS + 1))
    study = optuna.load_study(study_name="twonode/main", storage=f"sqlite:///{storage / 'twonode' / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
