"""Resume in every W&B mode, as a new user meets it: nothing W&B-related in the environment (no API
key, no ~/.netrc, no WANDB_* variable), a real study interrupted by Ctrl-C in its search and
SIGKILLed in its replication (and the other way round), each time resumed with the command the
driver printed (or the same command line after a SIGKILL) until it finishes: every trial once, and
one W&B run per trial whose offline folders continue it (same run id, epochs in order) instead of a
second run beside it. ``online`` has no network here: its code path is tested without one."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import optuna
import pytest

from study.results import read_results

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 30  # long enough that an interrupt lands mid-trial on a fast host

SPEC = f"""
name: resumed
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: 2, max_concurrent: 1}}
scheduler: {{type: none}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}}
  model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
  train: {{epochs: {EPOCHS}, batch_size: 4, threads: 1}}
parameters:
  train.lr: {{values: [0.01, 0.02]}}
final: {{seeds: [5], top_k: 1}}
logging: {{wandb: {{mode: MODE}}}}
"""


def results(ray_dir: Path) -> dict[str, list[dict]]:
    return {f.parent.name: read_results(f) for f in ray_dir.glob("trial_*/result.json")}


def new_user_env(tmp_path: Path, short: Path) -> dict[str, str]:
    """A newcomer's environment: no W&B key, login or setting of any kind."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_", "NETRC"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(home), RAY_TMPDIR=str(short), TMPDIR=str(short),
               RAY_USAGE_STATS_ENABLED="0", TUNE_GLOBAL_CHECKPOINT_S="1")
    return env


class Driver:
    """A study driver in a subprocess, interrupted mid-trial of one phase."""

    def __init__(self, argv: list[str], env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def interrupt_mid_trial(self, ray_dir: Path, sig: int) -> str:
        """Wait for a trial of ``ray_dir`` between its first and last epochs, send ``sig``; the output."""
        deadline = time.time() + 300
        while time.time() < deadline:
            epochs = [rows[-1]["epoch"] for rows in results(ray_dir).values() if rows]
            if any(1 <= e <= EPOCHS - 3 for e in epochs):
                break
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.1)
        else:
            pytest.fail(f"no trial of {ray_dir.name} to interrupt")
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.log.read_text()


def resume_command(output: str) -> list[str]:
    """The command the interrupt line gives, runnable here."""
    (line,) = [ln for ln in output.splitlines() if "interrupted" in ln and "continue with:" in ln]
    argv = shlex.split(line.split("continue with:", 1)[1])
    assert argv[:3] == ["python", "-m", "study.run"], line
    return [sys.executable, *argv[1:]]


def check_finished(exp: Path, env: dict) -> None:
    """Every trial of both phases ran once to its full budget; the study is done with its report."""
    study = optuna.load_study(study_name="resumed/main", storage=f"sqlite:///{exp / 'optuna.db'}")
    search, final = results(exp / "main"), results(exp / "main-final")
    assert len(search) == 2 and all(r[-1]["epoch"] == EPOCHS for r in search.values()), search.keys()
    assert len(final) == 1 and all(r[-1]["epoch"] == EPOCHS for r in final.values())  # the tuned replica
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(completed) == 2
    assert (exp / "done" / "main").is_file() and (exp / "report" / "report.md").is_file()


def check_wandb(exp: Path) -> None:
    """One W&B run id per trial, continued across the resumes: its folders share the id and name
    (``wandb sync`` joins them into one run), the last one logs every epoch once, in order, and
    ends complete."""
    from tests.study.wandb_offline import read_run

    trial_ids = {rows[-1]["trial_id"] for d in ("main", "main-final") for rows in results(exp / d).values()}
    by_id: dict[str, list[dict]] = {}
    for folder in sorted((exp / "wandb").glob("offline-run-*")):  # folder names sort by start time
        run = read_run(folder)
        by_id.setdefault(run["id"], []).append(run)
    by_id.pop(None, None)  # a run whose file was empty when its driver was killed (continued below)
    assert set(by_id) == trial_ids, (sorted(by_id), sorted(trial_ids))
    assert any(len(runs) > 1 for runs in by_id.values()), "no W&B run was continued by a resume"
    for run_id, runs in by_id.items():
        assert len({r["name"] for r in runs if r["name"]}) == 1, [r["name"] for r in runs]
        last = runs[-1]  # the folder of the sitting that finished it holds the whole history
        epochs = [int(h["epoch"]) for h in last["history"] if "epoch" in h and "val_miou" in h]
        assert epochs == list(range(1, EPOCHS + 1)), (run_id, epochs)
        assert last["summary"]["state"] == "complete", last["summary"]


@pytest.mark.parametrize("mode, first, second", [
    ("auto", signal.SIGINT, signal.SIGKILL),      # the default: no key, so offline
    ("offline", signal.SIGKILL, signal.SIGINT),
    ("disabled", signal.SIGINT, signal.SIGKILL),
])
def test_interrupted_study_resumes_to_the_end(tmp_path, mode, first, second):
    space = tmp_path / "resumed.yaml"
    space.write_text(textwrap.dedent(SPEC).replace("MODE", mode))
    short = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp"))  # Ray's socket paths must stay short
    env = new_user_env(tmp_path, short)
    storage = tmp_path / "runs"
    exp = storage / "resumed"
    start = [sys.executable, "-m", "study.run", str(space), "--storage", str(storage)]
    try:
        # 1. interrupted in the search
        out = Driver(start, env, tmp_path / "d1.log").interrupt_mid_trial(exp / "main", first)
        assert "Traceback" not in out, out[-3000:]
        if first == signal.SIGINT:
            assert "1 trial(s) unfinished" in out, out[-2000:]  # the running trial counts
            assert "(raylet)" not in out and "killed by `ray.kill`" not in out, out[-2000:]
            again = resume_command(out)
        else:
            again = [*start, "--resume"]
        # 2. resumed, then interrupted in the replication
        out = Driver(again, env, tmp_path / "d2.log").interrupt_mid_trial(exp / "main-final", second)
        assert "Traceback" not in out and "No WandB API key" not in out, out[-3000:]
        assert "deprecated" not in out, out[-3000:]
        if second == signal.SIGINT:
            assert "(raylet)" not in out and "killed by `ray.kill`" not in out, out[-2000:]
            again = resume_command(out)
        else:
            again = [*start, "--resume"]
        # 3. resumed to the end
        res = subprocess.run(again, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        (tmp_path / "d3.log").write_text(res.stdout + res.stderr)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "deprecated" not in res.stdout + res.stderr
    finally:
        subprocess.run(["rm", "-rf", str(short)])
    check_finished(exp, env)
    if mode == "disabled":
        assert not (exp / "wandb").exists()
    else:
        check_wandb(exp)


def test_resume_of_no_experiment_is_refused(tmp_path):
    space = tmp_path / "resumed.yaml"
    space.write_text(textwrap.dedent(SPEC).replace("MODE", "auto"))
    short = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp"))
    env = new_user_env(tmp_path, short)
    res = subprocess.run([sys.executable, "-m", "study.run", str(space), "--storage", str(tmp_path / "empty"),
                          "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    subprocess.run(["rm", "-rf", str(short)])
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --resume: no experiment at ")
    assert str(tmp_path / "empty" / "resumed") in err[0]
    assert not (tmp_path / "empty" / "resumed").exists()  # nothing was started in its place


def test_online_mode_code_path(monkeypatch, tmp_path):
    """Online: a key in the environment is enough (Ray's deprecated wandb.api check is not called);
    without one the study is refused before it starts, in one line naming the key."""
    import warnings

    from study.wandb_log import StudyWandbCallback, check_mode
    from trainables.errors import ConfigError

    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(ConfigError, match=r"logging.wandb.mode: online \(from the spec\) needs a W&B API key"):
        check_mode("online")
    check_mode("auto")  # no key: auto logs offline, nothing to refuse
    cb = StudyWandbCallback(project="p", group="g", mode="auto", job_type="search", wandb_dir=None)
    cb.setup()
    assert cb.kwargs["mode"] == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "0f" * 20)
    check_mode("online")
    restored = __import__("pickle").loads(__import__("pickle").dumps(cb))  # as Tuner.restore gets it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # wandb.api's deprecation would raise here
        restored.setup()
    assert restored.kwargs["mode"] == "online"  # auto is resolved where the study resumes


IN_ONE_DRIVER = """
import json, os, sys
from pathlib import Path

import ray
from ray import tune

from study.wandb_log import StudyWandbCallback
from tests.study.wandb_offline import read_run


def trainable(config):
    ckpt = tune.get_checkpoint()
    start = 0 if ckpt is None else int(open(os.path.join(ckpt.to_directory(), "e")).read())
    for epoch in range(start + 1, 4):
        if config["x"] == 2 and epoch == 2 and ckpt is None:  # the first attempt fails, Ray retries it
            raise RuntimeError("transient failure")
        d = os.path.join(os.environ["TMPDIR"], f"c{os.getpid()}-{config['x']}-{epoch}")
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "e"), "w").write(str(epoch))
        tune.report({"epoch": epoch, "epochs_total": 3, "val_miou": 0.1 * epoch * config["x"]},
                    checkpoint=tune.Checkpoint.from_directory(d))


ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False)
root, out = Path(sys.argv[1]), {}
for phase in ("search", "final"):  # two experiments in one driver, as a study's search and replication
    cb = StudyWandbCallback(project="p", group="g", mode="auto", job_type=phase, wandb_dir=str(root / phase),
                            study="s", slug="c")
    grid = tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                      run_config=tune.RunConfig(name=phase, storage_path=str(root / "ray"), verbose=0,
                                                callbacks=[cb], failure_config=tune.FailureConfig(max_failures=1))
                      ).fit()
    # read while this driver still runs: the experiment's end must have written every run
    runs = [read_run(f) for f in sorted((root / phase / "wandb").glob("offline-run-*"))]
    out[phase] = {"trials": sorted(r.metrics["trial_id"] for r in grid),
                  "runs": [{"id": r["id"], "epochs": [int(h["epoch"]) for h in r["history"] if "epoch" in h],
                            "state": r["summary"].get("state"), "job_type": r["job_type"]} for r in runs]}
print("RESULT " + json.dumps(out))
"""


def test_runs_are_written_when_the_experiment_returns(tmp_path):
    """The W&B runs live in the driver (one writer thread, one W&B service per experiment, no process
    per trial): when ``Tuner.fit`` returns, every trial's offline run is complete on disk, with the
    trial id as run id, every epoch once and its end state; a trial that Ray retried after a failure
    continues its run (one id); a second experiment of the same driver logs like the first."""
    short = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp"))
    env = new_user_env(tmp_path, short)
    try:
        res = subprocess.run([sys.executable, "-c", IN_ONE_DRIVER, str(tmp_path / "exp")], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["rm", "-rf", str(short)])
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT "):])
    for phase in ("search", "final"):
        trials, runs = out[phase]["trials"], out[phase]["runs"]
        assert len(trials) == 2 and {r["id"] for r in runs} == set(trials), out[phase]
        assert all(r["job_type"] == phase for r in runs)
        for trial_id in trials:
            last = [r for r in runs if r["id"] == trial_id][-1]
            assert last["epochs"] == [1, 2, 3] and last["state"] == "complete", (trial_id, runs)
