"""What a user of the study CLI sees: --dry-run (every check, nothing written), --list / --version,
and what W&B gets (scalars only, readable image panels). The terminal lines and the W&B runs of a
real study are checked in tests/study/test_study_run.py (one real study serves both)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from study import run as study_run
from study.dryrun import check_cluster
from study.spec import parse_study
from study.wandb_log import GAP, MIN_ROW_PX, PANELS, TITLE_PX, class_names, palette, panel_image, scalars
from trainables.errors import UserError

REPO = Path(__file__).resolve().parents[2]

SPACE = """
name: dry
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: tpe, seed: 0, num_samples: 6, max_concurrent: 2}
scheduler: {type: asha, grace_period: 2, reduction_factor: 2}
conditions:
  noise.0.rate: [0.5, 1.0]
parameters:
  method.name: {values: [ce, gce]}
  method.q: {distribution: uniform, min: 0.3, max: 0.9, when: {method.name: gce}}
  train.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}
  noise: [{kind: morph, rate: 1.0}]
  model: {kwargs: {encoder_depth: 3, decoder_channels: [16, 8, 4]}}
  train: {epochs: 10, batch_size: 4, threads: 1}
final: {seeds: [1, 2, 3], top_k: 1}
baselines:
  ce: {method.name: ce}
logging: {wandb: {mode: disabled}}
"""


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "study.run", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_dry_run_checks_everything_prints_the_plan_and_writes_nothing(tmp_path) -> None:
    space = tmp_path / "dry.yaml"
    space.write_text(textwrap.dedent(SPACE))
    storage = tmp_path / "runs"
    res = cli(str(space), "--dry-run", "--storage", str(storage))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert not storage.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["dry.yaml"]
    for slug in ("rate-0.5", "rate-1.0"):  # every condition, with its resolved search space
        assert f"condition {slug} (noise.0.rate=" in out
    assert out.count("method.q     uniform [0.3, 0.9]  when method.name='gce'") == 2
    assert out.count("train.lr     log_uniform_values [0.001, 0.1]") == 2
    # 6 trials of 10 epochs (ASHA: at least grace_period 2 each); tuned and ce x 3 seeds of 10 epochs
    assert out.count("trials: 6 (12-60 epochs); replicas: 6 (tuned x3, ce x3; 60 epochs)") == 2
    assert "budget: 2 condition(s), 12 trials + 12 replicas = 24-120 + 120 epochs" in out
    assert "a local Ray on this machine" in out and "nothing was written" in out

    # the same checks as a real start: a data root that does not exist is one line, nothing written
    bad = cli(str(space), "--dry-run", "--storage", str(storage), "--set", "trial.dataset.name=camvid",
              "--set", f"trial.dataset.root={tmp_path / 'nowhere'}")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: {space}: trial.dataset.root: {tmp_path / 'nowhere'}: no such folder"]
    assert not storage.exists()


def test_dry_run_checks_the_cluster_request() -> None:
    spec = parse_study({**__import__("yaml").safe_load(SPACE), "resources": {"cpu": 1, "gpu": 64}})
    with pytest.raises(UserError, match=r"^resources.gpu: 64 per trial, but no node of the cluster has that much"):
        check_cluster(spec, "local")
    spec.resources.gpu = 0
    assert check_cluster(spec, "local").startswith("a local Ray on this machine: 1 node(s)")


def test_study_cli_lists_and_has_a_version(capsys) -> None:
    assert study_run.main(["--list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "  adele\n" in out and "tau_fg" in out and "  pu\n" in out
    assert study_run.main(["--list", "encoders"]) == 0
    assert "tu-<any timm model>" in capsys.readouterr().out
    assert study_run.main(["--list", "method"]) == 2
    assert "did you mean 'methods'" in capsys.readouterr().err
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"noisyseg {version('noisyseg')}"


def test_wandb_gets_scalars_only() -> None:
    result = {"epoch": 3, "val_miou": 0.5, "diverged": False, "method/fit/1": [0.1, 0.2, 0.3],
              "method/fit/2": None, "method/rc/1": np.float32(0.25), "diverged_reason": "x",
              "method/nested": {"a": 1}, "method/mixed": [1, "a"], "pid": 123, "config": {"trial": {}}}
    out = scalars(result, {"pid", "config"})
    assert out == {"epoch": 3, "val_miou": 0.5, "diverged": 0, "method/fit/1/0": 0.1, "method/fit/1/1": 0.2,
                   "method/fit/1/2": 0.3, "method/rc/1": pytest.approx(0.25)}
    assert all(isinstance(v, (int, float)) for v in out.values())
    assert class_names({"train_iou/background": 1, "val_iou/disc": 0, "train_iou/disc": 0.5}) == ["background", "disc"]


def test_image_panels_are_readable_and_have_a_legend() -> None:
    rng = np.random.default_rng(0)
    n, h, w = 2, 32, 32
    panel = {"image": rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)}
    for key in PANELS[1:]:
        panel[key] = rng.integers(0, 3, (n, h, w)).astype(np.uint8)
    panel["noisy"][0, 0, 0] = 255  # a void pixel: the legend names it
    img = panel_image(panel, ["background", "disc", "box"])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    scale = MIN_ROW_PX // h  # 8: 32 px rows become 256 px
    tile = w * scale
    assert img.shape[1] == len(PANELS) * tile + (len(PANELS) - 1) * GAP
    assert img.shape[0] > TITLE_PX + n * (h * scale + GAP)  # + the legend
    for row in range(n):  # every tile is its image or label map, upscaled by nearest neighbour
        y = TITLE_PX + row * (h * scale + GAP)
        for i, key in enumerate(PANELS):
            tile_px = img[y:y + h * scale, i * (tile + GAP):i * (tile + GAP) + tile]
            expected = panel[key][row] if key == "image" else palette()[panel[key][row]]
            np.testing.assert_array_equal(tile_px, expected.repeat(scale, axis=0).repeat(scale, axis=1))
    legend = img[TITLE_PX + n * (h * scale + GAP):]
    for c in (0, 1, 2):  # each class colour as a swatch in the legend
        swatch = (legend == palette()[c]).all(axis=2)
        assert swatch.sum() >= 20 * 20, c


def test_wandb_mode_auto_finds_a_login_without_asking_wandb(tmp_path, monkeypatch) -> None:
    from study.wandb_log import resolve_mode

    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_mode("auto") == "offline"  # no login anywhere
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "ab" * 20 + "\n")
    assert resolve_mode("auto") == "online"  # `wandb login` wrote a key
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") == "disabled" and resolve_mode("offline") == "offline"


def test_trial_lines_and_the_summary_with_eta() -> None:
    """The study's terminal lines for Ray's own Trial objects (the callback study.tuner installs)."""
    import io

    from ray.tune.experiment import Trial

    from study.progress import duration, trial_lines
    from study.spec import Parameter
    from study.trial_info import TrialNamer

    def trial(i: int, status: str, result: dict, **config) -> Trial:
        t = Trial("train", config=config, trial_id=f"ab_{i:05d}", stub=True)
        t.run_metadata.last_result = result
        t.set_status(status)
        return t

    params = {"train.lr": Parameter(distribution="log_uniform_values", min=1e-4, max=0.1),
              "method.name": Parameter(values=["ce", "gce"]), "train.momentum": Parameter(value=0.9)}
    lines = trial_lines(slug="rate-0.5", phase="search", total=4, epochs=4, metric="best_val_miou",
                        parameters=params, namer=TrialNamer("rate-0.5"), early_stop=True, concurrency=2)
    lines._stream = out = io.StringIO()
    lines.setup()
    pruned = trial(1, Trial.TERMINATED, {"epoch": 2, "epochs_total": 4, "best_val_miou": 0.51234},
                   **{"train.lr": 0.0123456, "method.name": "gce"})
    running = trial(2, Trial.RUNNING, {"epoch": 1, "epochs_total": 4, "best_val_miou": 0.3})
    pending = trial(3, Trial.PENDING, {})
    trials = [pruned, running, pending]
    for _ in range(3):
        lines.on_trial_result(0, trials, running, {"time_this_iter_s": 2.0})  # Ray's epoch time
    lines.on_trial_complete(0, trials, pruned)
    lines.on_trial_complete(0, trials, pruned)  # Ray may report an end twice: one line
    diverged = trial(4, Trial.TERMINATED, {"epoch": 1, "epochs_total": 4, "diverged": True, "diverged_epoch": 1,
                                           "diverged_reason": "non-finite train loss (nan)"})
    printed = out.getvalue().splitlines()
    assert printed[0] == "[rate-0.5] search: 4 trials, 2 at a time, up to 4 epochs each (ASHA may stop trials early)"
    assert printed[1:] == ["[rate-0.5] t1     pruned at epoch 2/4      best_val_miou 0.5123   lr=0.01235  name=gce   [1/4]"]
    summary = lines.summary(trials)  # 3 epochs done; left: 3 (running) + 4 (pending) + 4 (not created)
    assert summary.startswith("[rate-0.5] search 1/4 done, 1 running | epochs 3/14 | ")
    assert summary.endswith(", eta <= 11s")  # 11 epochs left at 2 s each, 2 at a time
    assert lines.trial_line(trials + [diverged], diverged, False) == (
        "[rate-0.5] t4     diverged at epoch 1: non-finite train loss (nan)   best_val_miou -   [2/4]")
    assert [duration(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]


def test_a_failed_experiment_state_sync_is_one_line_unless_verbose() -> None:
    """Ray logs a failed save of the experiment state (retried at the next one) with a traceback; the
    study shows the message and the exception on one line, --verbose the traceback too."""
    import io
    import logging

    from study import terminal

    log = logging.getLogger("ray.tune.execution.experiment_state")
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    log.addHandler(handler)
    try:
        for level, traceback in ((1, False), (2, True)):
            terminal.configure(level)
            buf.seek(0)
            buf.truncate()
            try:
                raise FileNotFoundError(2, "No such file or directory", "/s/trial/result.json")
            except OSError:
                log.error("Saving experiment state to storage at '/s' failed with exception: ", exc_info=True)
            out = buf.getvalue()
            assert "FileNotFoundError" in out and ("Traceback" in out) == traceback, out
            if not traceback:
                assert out == ("Saving experiment state to storage at '/s' failed with exception: FileNotFoundError: "
                               "[Errno 2] No such file or directory: '/s/trial/result.json'\n")
    finally:
        log.removeHandler(handler)
        terminal.configure(1)
