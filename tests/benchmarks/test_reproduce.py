"""benchmarks/reproduce.py on tiny settings: the Ray-free executor (the GPU machine's path) and the
study executor (study.run on a local Ray) run a paper study, write the protocol tables, and a
rerun continues where the last one stopped instead of starting again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = ["--set", "trial.train.epochs=2", "--set", "trial.dataset.num_train=8", "--set", "trial.dataset.num_val=4",
        "--set", "trial.dataset.num_test=4", "--set", "trial.dataset.size=[32, 32]", "--set", "final.seeds=[1, 2]",
        "--set", "trial.model.kwargs={encoder_depth: 3, decoder_channels: [16, 8, 4]}"]


def reproduce(tmp_path: Path, *args: str, ray_address: str | None = None) -> subprocess.CompletedProcess:
    """benchmarks/reproduce.py; its studies join the Ray at ``ray_address`` (the test run's) if given."""
    cmd = [sys.executable, "benchmarks/reproduce.py", "--only", "adele_levels", "--dataset", "synthetic",
           "--storage", str(tmp_path / "runs"), "--out", str(tmp_path / "reproduce.md"), *TINY, *args]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_local_executor_runs_resumes_and_writes_the_protocol_table(tmp_path):
    first = reproduce(tmp_path, "--executor", "local", "--workers", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    exp = tmp_path / "runs" / "paper-adele-levels"
    trials = sorted(exp.glob("rate-*-final/trial_*"))
    assert [t.name for t in trials] == ["trial_ce_s1", "trial_ce_s2", "trial_tuned_s1", "trial_tuned_s2"] * 2
    for t in trials:  # Ray's layout, so the study's report reads them
        rows = [json.loads(x) for x in (t / "result.json").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2] and "best_val" in rows[-1]
        rep = json.loads((t / "params.json").read_text())["replica"]
        assert t.name == f"trial_{rep['label']}_s{rep['seed']}"
    assert (exp / "report" / "report.md").read_text().count("adele (as configured) − ce") == 2
    md = (tmp_path / "reproduce.md").read_text()
    assert "### Protocol 4: ADELE Fig. 7" in md and "| 0.3 |" in md and "| 0.6 |" in md
    assert "ADELE beats ce at every corruption level" in md
    # the figure goes beside the page that links it, never into the checkout's docs/
    assert (tmp_path / "figures" / "reproduce" / "p4_synthetic.png").is_file()
    assert "](figures/reproduce/p4_synthetic.png)" in md

    # an interrupted run: one replicate lost its result; the rerun runs that one only
    lost = exp / "rate-0.6-final" / "trial_tuned_s2"
    for name in ("run", "result.json"):
        subprocess.run(["rm", "-rf", str(lost / name)], check=True)
    (exp / "report" / "report.md").unlink()
    kept = {t: (t / "result.json").stat().st_mtime_ns for t in trials if t != lost}
    again = reproduce(tmp_path, "--executor", "local", "--workers", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {t: (t / "result.json").stat().st_mtime_ns for t in kept} == kept
    assert len((lost / "result.json").read_text().splitlines()) == 2
    wall = json.loads((exp / "reproduce_wall.json").read_text())["runs"]
    assert len(wall) == 2 and all(r["finished"] for r in wall)
    # finished: kept as is
    third = reproduce(tmp_path, "--executor", "local")
    assert "paper-adele-levels: finished, kept" in third.stdout


def test_study_executor_runs_the_paper_study_on_ray(tmp_path, ray_cluster):
    out = reproduce(tmp_path, "--set", "conditions.noise.0.rate=[0.3]", ray_address=ray_cluster)
    assert out.returncode == 0, out.stderr[-2000:]
    exp = tmp_path / "runs" / "paper-adele-levels"
    report = (exp / "report" / "report.md").read_text()
    assert "no search (the trial as configured)" in report and "| adele (as configured) | 2 |" in report
    assert not list(exp.glob("rate-0.3/trial_*"))  # no search trials
    assert len(list(exp.glob("rate-0.3-final/trial_*"))) == 4
    md = (tmp_path / "reproduce.md").read_text()
    assert "| 0.3 |" in md and "| 0.6 |" not in md
