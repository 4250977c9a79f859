"""An experiment folder written by an older main (commit d323de3, before study/ was regrouped)
still resumes with today's code: Ray unpickles tuner.pkl, the searcher's state and the trial
callbacks by module path, so the classes it names (Space, TrialLines, StudyWandbCallback,
PrunedAwareOptunaSearch, RelocatableSearchGenerator, TrialNamer) must stay importable where they
were. The fixture is a real 3-trial search whose driver was SIGKILLed after its first trial
(tests/study/fixtures/make_d323de3_experiment.py says how it was written); the resume runs the two
trials left, the replication and the report, and leaves the finished trial as it was."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "d323de3_experiment.tar.gz"
EPOCHS = 3


def trial_rows(main: Path) -> dict[str, list[dict]]:
    out = {}
    for f in sorted(main.glob("trial_*/result.json")):
        out[f.parent.name] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def test_folder_written_by_d323de3_resumes(tmp_path, ray_cluster):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    exp = tmp_path / "old"
    before = {name: (exp / "main" / name / "result.json").read_bytes() for name in trial_rows(exp / "main")}
    assert len(before) == 1  # one trial finished before the kill
    (done_name, done_bytes), = before.items()
    done_id = trial_rows(exp / "main")[done_name][-1]["trial_id"]

    short = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env.update(PYTHONPATH=str(REPO), RAY_TMPDIR=str(short), TMPDIR=str(short), RAY_USAGE_STATS_ENABLED="0",
               WANDB_MODE="disabled", RAY_ADDRESS=ray_cluster)  # the resume joins the test run's Ray
    try:
        res = subprocess.run([sys.executable, "-m", "study.run", str(exp), "--resume", "--quiet"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["rm", "-rf", str(short)])
    (tmp_path / "resume.log").write_text(res.stdout + res.stderr)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-4000:]

    # the search finished: three trials of full budget, the one done before the kill untouched
    rows = trial_rows(exp / "main")
    assert len(rows) == 3 and all(r[-1]["epoch"] == EPOCHS for r in rows.values())
    assert (exp / "main" / done_name / "result.json").read_bytes() == done_bytes
    assert sum(r[-1]["trial_id"] == done_id for r in rows.values()) == 1
    # every new trial ran from its first epoch (none restarted the finished one's history)
    assert all(r[0]["epoch"] == 1 for name, r in rows.items() if name != done_name)
    study = optuna.load_study(study_name="old/main", storage=f"sqlite:///{exp / 'optuna.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    assert sum(t.user_attrs.get("ray_trial_id") == done_id for t in study.trials) == 1

    # then the replication and the report with its tables
    assert (exp / "done" / "main").is_file()
    report = exp / "report"
    assert (report / "report.md").is_file()
    assert list(report.glob("*.csv")), sorted(p.name for p in report.iterdir())
    assert (report / "best_main.yaml").is_file()
