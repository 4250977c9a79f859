"""``python -m study.run`` against hostile input and a hostile environment: every bad input is one
line, exit 2, nothing written; a diverging trial is recorded and the study goes on; a W&B key never
reaches a file; a resumed folder must be trusted; one driver per experiment."""
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

from study import run as study_run
from study.failures import trial_failure
from study.lock import ExperimentLock
from study.trust import untrusted

REPO = Path(__file__).resolve().parents[2]

TINY = """
name: {name}
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: 1, max_concurrent: 1}}
scheduler: {{type: none}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}}
  model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
  train: {{epochs: 2, batch_size: 4, threads: 1}}
final: {{seeds: [5], top_k: 1}}
logging: {{wandb: {{mode: disabled}}}}
"""


def space(tmp_path: Path, name: str = "hard", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(TINY.format(name=name)) + textwrap.dedent(extra))
    return path


def refused(capsys, argv: list[str], storage: Path) -> str:
    """Run the study CLI in this process; it must refuse with one line and write nothing."""
    assert study_run.main([*argv, "--storage", str(storage)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not storage.exists()
    return err[0]


# -- bad input: one line, exit 2, nothing written -------------------------------------------------

def test_binary_non_utf8_folder_and_duplicate_keys(tmp_path, capsys) -> None:
    storage = tmp_path / "runs"
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(os.urandom(2048) + b"\0")
    assert f"{blob}: not a text file" in refused(capsys, [str(blob)], storage)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(space(tmp_path).read_bytes().replace(b"name: hard", "name: h\u00e4rd".encode("latin-1")))
    assert f"{latin}: line 2: not UTF-8 text (byte 0xe4)" in refused(capsys, [str(latin)], storage)
    assert f"{tmp_path}: is a folder; give a YAML file" in refused(capsys, [str(tmp_path)], storage)
    dup = space(tmp_path, extra="search: {num_samples: 3}\n")
    assert f"{dup}: line 12: duplicate key 'search' (first given at line 4)" in refused(capsys, [str(dup)], storage)


def test_metric_that_trials_never_report(tmp_path, capsys) -> None:
    line = refused(capsys, [str(space(tmp_path)), "--set", "metric.name=best_vall_miou"], tmp_path / "runs")
    assert "metric.name: trials never report 'best_vall_miou' (did you mean 'best_val_miou'?)" in line


@pytest.mark.parametrize("n", ["0", "-2"])
def test_num_samples_must_be_positive(tmp_path, capsys, n) -> None:
    line = refused(capsys, [str(space(tmp_path)), "--num-samples", n], tmp_path / "runs")
    assert f"--num-samples: got {n}; allowed: 1 or more" in line


def test_nothing_listening_at_the_address_fails_fast(tmp_path, capsys) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    line = refused(capsys, [str(space(tmp_path)), "--address", f"127.0.0.1:{port}"], tmp_path / "runs")
    assert time.time() - t0 < 30
    assert f"--address 127.0.0.1:{port}: connection refused" in line


def test_storage_under_a_regular_file(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert study_run.main([str(space(tmp_path)), "--storage", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --storage {blocker / 'sub'}: {blocker} is a file, not a folder; choose another location"]
    assert blocker.read_text() == "x"


def test_storage_nobody_may_write(tmp_path, capsys) -> None:
    from tests.trainables.test_run_cli import unwritable

    with unwritable(tmp_path / "locked") as locked:
        line = refused(capsys, [str(space(tmp_path))], locked / "runs")
        assert f"--storage {locked / 'runs'}: no permission to write in {locked}" in line


def test_a_request_no_node_can_hold_is_refused_naming_the_nodes() -> None:
    from study.preflight import check_resources
    from trainables.errors import UserError

    nodes = [{"CPU": 1.0, "memory": 1e9}, {"CPU": 1.0, "GPU": 0.0}]  # as ray.nodes() reports them
    check_resources(1, 0, nodes, "resources")
    with pytest.raises(UserError, match=r"^resources.cpu: 2 per trial, but no node of the cluster has that much "
                                         r"\(node 1: CPU 1, GPU 0; node 2: CPU 1, GPU 0\)"):
        check_resources(2, 0, nodes, "resources")  # 2 CPUs in total, but not on one node
    with pytest.raises(UserError, match=r"^resources.gpu: 0.5 per trial"):
        check_resources(1, 0.5, nodes, "resources")


def test_every_categorical_combination_is_checked_up_front(tmp_path, capsys) -> None:
    bad = space(tmp_path, extra="parameters:\n  model.kwargs.encoder_depth: {values: [3, 4]}\n"
                                "  train.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}\n")
    line = refused(capsys, [str(bad)], tmp_path / "runs")
    assert "parameters: the combination model.kwargs.encoder_depth=4" in line
    assert "Model depth is 4, but you provide `decoder_channels` for 3 blocks" in line
    # an input size the architecture cannot take, found by a forward pass on the meta device
    line = refused(capsys, [str(space(tmp_path)), "--set", "trial.dataset.size=[40, 40]",
                            "--set", "trial.model={arch: deeplabv3plus}"], tmp_path / "runs")
    assert "dataset.size [40, 40]: Wrong input shape height=40, width=40" in line
    # a device the trials cannot get from Ray
    line = refused(capsys, [str(space(tmp_path)), "--set", "trial.train.device=cuda"], tmp_path / "runs")
    assert "trial.train.device: 'cuda' but resources.gpu is 0" in line


def test_set_spellings_and_component_switches(tmp_path, capsys) -> None:
    path = str(space(tmp_path))
    spec = study_run.resolve_spec(path, smoke=False, sets=["trial.train.lr=1e-4"], storage=None, num_samples=None)
    assert spec.trial["train"]["lr"] == 1e-4
    root = tmp_path / "camvid"
    spec = study_run.resolve_spec(path, smoke=False, storage=None, num_samples=None,
                                  sets=["trial.dataset.name=camvid", f"trial.dataset.root={root}"])
    assert spec.trial["dataset"]["name"] == "camvid" and "num_train" not in spec.trial["dataset"]
    line = refused(capsys, [path, "--set", "trial.method.name=adel"], tmp_path / "runs")
    assert "trial.method.name: unknown method 'adel' (did you mean 'adele'?)" in line


# -- the experiment lock ---------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from study.lock import ExperimentLock
    lock = ExperimentLock.acquire(sys.argv[1])
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_second_driver_is_refused_naming_the_holder(tmp_path, capsys) -> None:
    path = space(tmp_path)
    storage = tmp_path / "runs"
    exp = storage / "hard"
    exp.mkdir(parents=True)
    spec = study_run.resolve_spec(str(path), smoke=False, sets=[], storage=str(storage), num_samples=None)
    study_run.write_spec(spec)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(exp)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert study_run.main([str(path), "--storage", str(storage), "--resume"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: experiment {exp} is in use by another driver (pid {holder.pid} on host "
                              f"{socket.gethostname()}"), err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the dead holder's lock; the next driver sees its record
    lock = ExperimentLock.acquire(exp)
    try:
        assert lock.previous["pid"] == holder.pid and lock.record["pid"] == os.getpid()
    finally:
        lock.release()


# -- a real study: a diverging condition, a W&B key, then trust ---------------------------------------

DIVERGE = """
conditions:
  train.lr: [0.01, 1.0e+9]
"""


@pytest.fixture(scope="module")
def diverging_study(tmp_path_factory):
    """One real study (local Ray, W&B offline with a fake API key): the lr=1e6 condition diverges."""
    tmp = tmp_path_factory.mktemp("wandb")
    short = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))  # Ray's socket paths must stay short
    key = "0f" * 20  # looks like a W&B key (40 hex characters)
    path = tmp / "hard.yaml"
    path.write_text(textwrap.dedent(TINY.format(name="hard")).replace("mode: disabled", "mode: offline")
                    .replace("top_k: 1", "top_k: 0") + textwrap.dedent(DIVERGE))  # no replication: faster
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(home), RAY_TMPDIR=str(short), TMPDIR=str(short),
               WANDB_API_KEY=key, WANDB_MODE="offline", WANDB_SILENT="true", RAY_USAGE_STATS_ENABLED="0")
    storage = tmp / "runs"
    res = subprocess.run([sys.executable, "-m", "study.run", str(path), "--storage", str(storage), "--quiet"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    yield {"res": res, "exp": storage / "hard", "key": key, "dirs": [storage, short, home], "space": path,
           "env": env, "storage": storage}
    subprocess.run(["rm", "-rf", str(short)])


def test_diverged_trial_is_recorded_and_the_study_goes_on(diverging_study) -> None:
    res, exp = diverging_study["res"], diverging_study["exp"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    slug = "lr-1000000000.0"
    (trial_dir,) = list((exp / slug).glob("trial_*"))
    rows = [json.loads(ln) for ln in (trial_dir / "result.json").read_text().splitlines() if ln.strip()]
    last = rows[-1]
    assert last["diverged"] is True and last["epoch"] == last["diverged_epoch"] <= 2
    assert trial_failure(trial_dir, last).startswith(f"diverged at epoch {last['epoch']}: non-finite train loss")
    study = optuna.load_study(study_name=f"hard/{slug}", storage=f"sqlite:///{exp / 'optuna.db'}")
    (t,) = study.trials
    assert t.state.name == "FAIL" and t.user_attrs["failure"].startswith("diverged at epoch")
    marker = json.loads((exp / "done" / slug).read_text())
    assert marker["search"][0]["failure"].startswith("diverged at epoch")
    # the other condition ran normally
    ok = optuna.load_study(study_name="hard/lr-0.01", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert [t.state.name for t in ok.trials] == ["COMPLETE"]
    assert json.loads((exp / "done" / "lr-0.01").read_text())["search"][0]["failure"] is None
    # W&B: the end state in the run's summary and tags
    from tests.study.wandb_offline import read_runs

    runs = read_runs(exp / "wandb")
    assert "diverged" in runs[f"{slug}/t0"]["tags"] and runs[f"{slug}/t0"]["summary"]["state"] == "diverged"
    assert runs[f"{slug}/t0"]["summary"]["failure"].startswith("diverged at epoch")
    assert runs["lr-0.01/t0"]["summary"]["state"] == "complete" and "diverged" not in runs["lr-0.01/t0"]["tags"]


def test_wandb_key_reaches_no_file(diverging_study) -> None:
    res, key = diverging_study["res"], diverging_study["key"]
    assert res.returncode == 0
    runs = list((diverging_study["exp"] / "wandb").rglob("offline-run-*"))
    assert len(runs) >= 2  # W&B really logged every trial (offline)
    sessions = list(Path(diverging_study["dirs"][1]).glob("ray/session_*/logs"))
    assert sessions, "no Ray session folder to check"
    hits = []
    for folder in diverging_study["dirs"]:
        for path in Path(folder).rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and key.encode() in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    assert hits == []
    assert key not in res.stdout + res.stderr


def test_resume_refuses_folders_others_could_have_written(diverging_study, capsys) -> None:
    exp, space_path, storage = diverging_study["exp"], diverging_study["space"], diverging_study["storage"]
    assert untrusted(exp) is None
    tuner_pkl = exp / "lr-0.01" / "tuner.pkl"
    (searcher,) = list((exp / "lr-0.01").glob("searcher-state-*.pkl"))
    cases = [(tuner_pkl, lambda p: p.chmod(0o664), "writable by group (mode 664)"),
             (exp, lambda p: p.chmod(0o757), "writable by others (mode 757)"),
             (searcher, lambda p: os.chown(p, 65534, -1), "owned by"),
             ]
    for path, spoil, why in cases:
        mode, uid = path.stat().st_mode & 0o777, path.stat().st_uid
        if why == "owned by" and os.geteuid() != 0:
            continue  # only root can give a file away
        spoil(path)
        try:
            assert study_run.main([str(space_path), "--storage", str(storage), "--resume"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"error: --resume: refusing {path}: {why}"), err
            assert "trusted like code" in err[0]
        finally:
            path.chmod(mode)
            if why == "owned by":
                os.chown(path, uid, -1)
    assert untrusted(exp) is None


def test_an_experiment_folder_needs_resume(diverging_study, capsys) -> None:
    exp = diverging_study["exp"]
    assert study_run.main([str(exp)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {exp}: an experiment folder; pass --resume to continue it, or give a study YAML"]


def test_the_printed_resume_command_gets_no_differs_note(tmp_path, monkeypatch, capsys) -> None:
    """A study started with a relative --storage (make run's runs/quickstart-...) and resumed with the
    printed command (its folder) runs the same spec: no "it differs from the one given" note."""
    monkeypatch.chdir(tmp_path)
    path = space(tmp_path)
    spec = study_run.resolve_spec(str(path), smoke=False, sets=[], storage="runs/qs", num_samples=None)
    study_run.write_spec(spec)
    folder = study_run.resume_hint(spec).split()[3]  # python -m study.run <folder> --resume
    assert folder == "runs/qs/hard"
    given, storage = study_run.experiment_arg(folder)
    again = study_run.resolve_spec(given, smoke=False, sets=[], storage=storage, num_samples=None)
    chosen = study_run.choose_spec(again, resume=True)
    assert "differs" not in capsys.readouterr().err
    assert chosen.name == "hard"
    # a real difference still gets the note
    other = study_run.resolve_spec(str(path), smoke=False, sets=["search.seed=3"], storage="runs/qs", num_samples=None)
    study_run.choose_spec(other, resume=True)
    assert "it differs from the one given" in capsys.readouterr().err
