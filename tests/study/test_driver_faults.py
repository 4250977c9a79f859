"""A study driver under faults, for real: a second driver on the same experiment is refused while
the first runs; the first is SIGKILLed mid-trial; its experiment folder is moved; ``--resume`` at
the new place stops the Ray processes the dead driver left, continues there (the folder being
resumed is the truth, not the storage path stored in study.yaml) and finishes the study."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from study.leftovers import session_processes

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 40  # long enough that a quiet 2-core machine cannot finish the study before the kill

SPEC = f"""
name: moved
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: 3, max_concurrent: 1}}
scheduler: {{type: none}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}}
  model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
  train: {{epochs: {EPOCHS}, batch_size: 4, threads: 1}}
parameters:
  train.lr: {{values: [0.01, 0.02]}}
final: {{seeds: [5], top_k: 0}}
logging: {{wandb: {{mode: disabled}}}}
"""


def results(ray_dir: Path) -> dict[str, list[dict]]:
    out = {}
    for f in ray_dir.glob("trial_*/result.json"):
        rows = []
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        out[f.parent.name] = rows
    return out


def test_second_driver_kill_move_and_resume(tmp_path):
    space = tmp_path / "moved.yaml"
    space.write_text(textwrap.dedent(SPEC))
    short = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env.update(PYTHONPATH=str(REPO), RAY_TMPDIR=str(short), TMPDIR=str(short), RAY_USAGE_STATS_ENABLED="0",
               TUNE_GLOBAL_CHECKPOINT_S="1")
    first_root, second_root = tmp_path / "a", tmp_path / "b"
    exp = first_root / "moved"
    log = open(tmp_path / "driver1.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "study.run", str(space), "--storage", str(first_root), "--quiet"],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    def half_way() -> None:
        """Wait for a search trial between its first and its last epochs."""
        deadline = time.time() + 240
        while time.time() < deadline:
            epochs = [rows[-1]["epoch"] for rows in results(exp / "main").values() if rows]
            if any(1 <= e <= EPOCHS - 2 for e in epochs):
                return
            assert driver.poll() is None, (tmp_path / "driver1.log").read_text()[-3000:]
            time.sleep(0.1)
        pytest.fail("the study made no progress to interrupt")

    try:
        half_way()
        session = json.loads((exp / ".lock").read_text()).get("ray_session")  # the driver's own Ray
        assert session and Path(session).is_dir()

        # 1. a second driver on the same experiment: refused, naming the running one
        second = subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(first_root),
                                 "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"in use by another driver (pid {driver.pid} on host {socket.gethostname()}" in err[0]
        assert driver.poll() is None  # and the first one is unharmed

        # 2. the first driver is killed mid-trial: its Ray lives on for a while
        half_way()
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    left = session_processes(session)
    assert left, "the killed driver left no Ray processes (the fault this test is about did not happen)"
    assert not (exp / "done" / "main").exists()

    # 3. the experiment folder is moved, then resumed where it now is
    second_root.mkdir()
    os.replace(exp, second_root / "moved")
    exp = second_root / "moved"
    try:
        res = subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(second_root), "--resume",
                              "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        (tmp_path / "resume.log").write_text(res.stdout + res.stderr)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-4000:]
        assert f"the experiment was moved from {first_root / 'moved'}" in res.stderr
        assert "Ray process(es) left by the interrupted driver" in res.stderr
        assert session_processes(session) == []  # nothing of the dead driver's Ray survived the resume
    finally:
        subprocess.run(["rm", "-rf", str(short)])
    assert not (first_root / "moved").exists()  # nothing was written at the old place

    # the study finished at the new place: every trial once, the interrupted one continued
    study = optuna.load_study(study_name="moved/main", storage=f"sqlite:///{exp / 'optuna.db'}")
    rows = results(exp / "main")
    assert len(rows) == 3 and all(r[-1]["epoch"] == EPOCHS for r in rows.values())
    by_ray = {t.user_attrs.get("ray_trial_id"): t.state.name for t in study.trials}
    assert all(by_ray[r[-1]["trial_id"]] == "COMPLETE" for r in rows.values())
    assert all(state == "FAIL" for tid, state in by_ray.items() if tid not in {r[-1]["trial_id"] for r in rows.values()})
    restored = [r for history in rows.values() for r in history if r["iterations_since_restore"] < r["training_iteration"]]
    assert restored, "the interrupted trial did not continue from its checkpoint"
    assert (exp / "done" / "main").is_file() and (exp / "report" / "report.md").is_file()
