"""study.failures.trial_failure on the files real Ray Tune trials leave: a trial that raised, one
that failed once and was retried to the end, and one the engine stopped as diverged."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from study.failures import trial_failure

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, sys
    import ray
    from ray import tune

    def trainable(config):
        ckpt = tune.get_checkpoint()
        start = 0 if ckpt is None else int(open(os.path.join(ckpt.to_directory(), "e")).read())
        for epoch in range(start + 1, 4):
            if config["mode"] == "raise" and epoch == 2:  # every attempt: a permanent failure
                raise ValueError("boom: the data file went missing")
            if config["mode"] == "once" and epoch == 2 and ckpt is None:  # the first attempt only
                raise RuntimeError("transient failure")
            d = os.path.join(os.environ["TMPDIR"], f"c{os.getpid()}-{epoch}")
            os.makedirs(d)
            open(os.path.join(d, "e"), "w").write(str(epoch))
            tune.report({"epoch": epoch, "epochs_total": 3, "score": 0.5},
                        checkpoint=tune.Checkpoint.from_directory(d))

    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False)
    tune.Tuner(trainable, param_space={"mode": tune.grid_search(["raise", "once"])},
               tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: t.config["mode"]),
               run_config=tune.RunConfig(name="x", storage_path=sys.argv[1], verbose=0,
                                         failure_config=tune.FailureConfig(max_failures=1))).fit()
""")


def last_result(trial_dir: Path) -> dict:
    rows = [json.loads(ln) for ln in (trial_dir / "result.json").read_text().splitlines() if ln.strip()]
    return rows[-1]


@pytest.fixture(scope="module")
def ray_trials(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("failures")
    tmp = tempfile.mkdtemp(prefix="rf", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": tmp, "TMPDIR": tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    subprocess.run(["rm", "-rf", tmp])
    assert (root / "x" / "raise" / "result.json").is_file(), res.stderr[-3000:]
    return root / "x"


def test_a_trial_that_raised_is_failed_with_the_error_line(ray_trials) -> None:
    trial = ray_trials / "raise"
    assert (trial / "error.txt").is_file()
    assert (trial / "error.txt").read_text().count("Failure # ") == 2  # retried once, failed again
    reason = trial_failure(trial, last_result(trial))
    assert reason == "failed: ValueError: boom: the data file went missing"


def test_a_trial_retried_to_the_end_is_not_failed(ray_trials) -> None:
    trial = ray_trials / "once"
    assert "transient failure" in (trial / "error.txt").read_text()  # it did fail once
    assert last_result(trial)["epoch"] == 3
    assert trial_failure(trial, last_result(trial)) is None


def test_a_diverged_trial_says_so(tmp_path) -> None:
    last = {"epoch": 2, "epochs_total": 5, "diverged": True, "diverged_epoch": 2,
            "diverged_reason": "non-finite train loss (nan)"}
    assert trial_failure(tmp_path, last) == "diverged at epoch 2: non-finite train loss (nan)"
    assert trial_failure(tmp_path, {"epoch": 5, "epochs_total": 5}) is None
    assert trial_failure(tmp_path, {}) is None
