"""``python -m trainables.export``: real tiny runs exported and re-loaded through the ``folder`` loader,
each dataset's mask coding, SegTHOR volumes, a real study's best trial and replicate, bad input."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from trainables import export as export_mod
from trainables import run as run_mod
from trainables.checkpoint import load_checkpoint, save_checkpoint
from trainables.config import load_trial_config, parse_trial
from trainables.contact_sheet import HEADER, TILE_HEIGHT, GAP
from trainables.data import create_dataset
from trainables.engine import MEAN, STD, prepare_data
from trainables.errors import UserError
from trainables.label_issues import cleanlab_issues
from trainables.label_writers import (Coding, ExportSplit, create_coding, voc_palette, write_folder,
                                      write_segthor_volumes)
from trainables.models import create_model

REPO = Path(__file__).resolve().parents[2]
TINY = ["dataset.size=[32, 32]", "dataset.num_train=12", "dataset.num_val=4", "dataset.num_test=4",
        "train.threads=1", "train.batch_size=6", "train.optimizer=adamw", "train.lr=0.003",
        "noise=[{kind: morph, rate: 1.0}]"]
# ADELE made to trigger and correct within 4 epochs (floor start at 0, tiny r, low tau), so the
# labels the run ends with differ from the noisy ones it started from
ADELE = ["method.name=adele", "method.scales=[1.0]", "method.correct_every=1", "method.min_points=1",
         "method.start_rule=floor", "method.start_floor=0.0", "method.r=0.01", "method.tau_fg=0.3",
         "method.tau_bg=0.3", "train.epochs=4"]


def train(out: Path, overrides: list[str], config: str | None = None) -> Path:
    argv = ([config] if config else []) + ["--out", str(out), "--quiet"] + [a for o in overrides for a in ("--set", o)]
    assert run_mod.main(argv) == 0
    return out


def export(*argv: str) -> int:
    return export_mod.main([str(a) for a in argv] + ["--threads", "1"])


def last_state(run: Path) -> dict:
    return load_checkpoint(run_mod.checkpoints(run)[-1])


def reload(export_dir: Path):
    return create_dataset(load_trial_config(export_dir / "config.yaml").dataset)


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def adele_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("adele") / "run", TINY + ADELE)


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("ce") / "run", TINY + ["train.epochs=3"])


def test_round_trip_through_the_folder_loader(adele_run, tmp_path):
    out = tmp_path / "exp"
    assert export(adele_run, "--out", out, "--labels", "run", "--epoch", "last") == 0
    state = last_state(adele_run)
    cfg = load_trial_config(adele_run / "config.yaml")
    td = prepare_data(cfg)
    final = state["labels"].numpy()
    assert (final != td.noisy.numpy()).any(), "the run must have corrected some labels for this test to bite"
    data = reload(out)
    assert np.array_equal(data.train.masks, final)
    assert np.array_equal(data.train.images, td.images["train"].numpy())
    for split in ("val", "test"):
        assert np.array_equal(data.splits()[split].masks, td.clean[split].numpy())
        assert np.array_equal(data.splits()[split].images, td.images[split].numpy())
    assert data.train.names == [f"train_{i:05d}" for i in range(12)]

    rows = read_rows(out / "label_issues.csv")
    assert [int(r["rank"]) for r in rows] == list(range(1, 13))
    assert sorted(int(r["index"]) for r in rows) == list(range(12))
    dis = [float(r["disagreement"]) for r in rows]
    assert dis == sorted(dis, reverse=True)
    changed = (final != td.noisy.numpy()).reshape(12, -1).sum(1)
    assert {int(r["index"]): int(r["corrected_pixels"]) for r in rows} == dict(enumerate(changed.tolist()))
    noise = (td.noisy.numpy() != td.clean["train"].numpy()).reshape(12, -1).mean(1)
    assert [float(r["injected_noise"]) for r in rows] == pytest.approx([noise[int(r["index"])] for r in rows], abs=1e-6)
    classes = read_rows(out / "label_issues_classes.csv")
    assert [c["class"] for c in classes] == ["background", "disc", "box", "triangle", "bar"]
    summary = json.loads((out / "export.json").read_text())
    assert summary["pixels_corrected_by_run"] == int(changed.sum()) == summary["pixels_changed_by_export"]
    assert summary["method"] == "adele" and summary["images"] == {"train": 12, "val": 4, "test": 4}
    last = json.loads((adele_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert summary["run_metrics"]["epoch"] == 4 and summary["run_metrics"]["label_miou"] == last["label_miou"]
    sheet = Image.open(out / "suspects.png")
    assert sheet.size[1] == HEADER + 12 * (HEADER + TILE_HEIGHT + GAP)  # top-k 16 > 12 images: all rows
    assert not list(tmp_path.glob(".exp.tmp-*"))
    # the export's config trains ce on the exported labels as it is
    retrain = load_trial_config(out / "config.yaml")
    assert retrain.method.name == "ce" and retrain.noise == [] and retrain.dataset.name == "folder"
    assert retrain.model == cfg.model and retrain.train == cfg.train and retrain.seed == cfg.seed
    train(tmp_path / "retrain", ["train.epochs=1"], str(out / "config.yaml"))
    assert json.loads((tmp_path / "retrain" / "summary.json").read_text())["label_miou"] == 1.0


def test_confident_labels_follow_an_independent_forward_pass(ce_run, tmp_path):
    out = tmp_path / "exp"
    assert export(ce_run, "--out", out, "--labels", "confident", "--tau", "0.5", "--top-k", "3", "--all-classes", "--epoch", "last") == 0
    state = last_state(ce_run)
    cfg = load_trial_config(ce_run / "config.yaml")
    td = prepare_data(cfg)
    model = create_model(cfg.model, 5)
    model.load_state_dict(state["model"])
    model.eval()
    with torch.no_grad():
        x = td.images["train"].permute(0, 3, 1, 2).float() / 255
        probs = torch.softmax(model((x - MEAN) / STD), 1)
    conf, pred = probs.max(1)
    final = state["labels"]
    expected = torch.where((conf >= 0.5) & (final != 255), pred, final.long()).to(torch.uint8).numpy()
    got = reload(out).train.masks
    assert (expected != final.numpy()).any()
    assert np.mean(got == expected) > 0.999  # float reductions may flip a pixel sitting exactly on tau
    assert Image.open(out / "suspects.png").size[1] == HEADER + 3 * (HEADER + TILE_HEIGHT + GAP)
    summary = json.loads((out / "export.json").read_text())
    assert summary["labels"] == "confident" and summary["method"] == "ce"
    assert summary["pixels_corrected_by_run"] == 0  # ce never rewrites its labels
    assert summary["pixels_changed_by_export"] == int((got != final.numpy()).sum())

    # --labels cleanlab: cleanlab's flagged pixels (confident learning on the same probabilities) take
    # the model's class; --rank-by cleanlab_issues orders by cleanlab's num_pixel_issues score
    out2 = tmp_path / "exp-cleanlab"
    assert export(ce_run, "--out", out2, "--labels", "cleanlab", "--rank-by", "cleanlab_issues", "--all-classes", "--epoch", "last") == 0
    flags = cleanlab_issues(final.numpy(), probs.numpy()).flags
    expected2 = np.where(flags, pred.numpy(), final.numpy())
    got2 = reload(out2).train.masks
    assert flags.any() and np.mean(got2 == expected2) > 0.999
    rows = read_rows(out2 / "label_issues.csv")
    scores = [float(r["cleanlab_num_pixel_issues"]) for r in rows]
    assert scores == sorted(scores)
    assert sum(int(r["cleanlab_issue_pixels"]) for r in rows) == int(flags.sum())
    summary2 = json.loads((out2 / "export.json").read_text())
    assert summary2["labels"] == "cleanlab" and summary2["rank_by"] == "cleanlab_issues"
    assert summary2["pixels_flagged_by_cleanlab"] == int(flags.sum())
    assert summary2["pixels_changed_by_export"] == int((got2 != final.numpy()).sum())

    # by default only pixels between background and the classes the detector says are learned change
    out3 = tmp_path / "exp-gated"
    assert export(ce_run, "--out", out3, "--labels", "confident", "--tau", "0.5", "--epoch", "last") == 0
    summary3 = json.loads((out3 / "export.json").read_text())
    rows = [json.loads(line) for line in (ce_run / "metrics.jsonl").read_text().splitlines()]
    ready = export_mod.ready_classes(rows, reload(out3).class_names, 3)
    assert summary3["classes_changed"] == [reload(out3).class_names[c] for c in ready]
    both = np.isin(final.numpy(), ready) & np.isin(expected, ready)
    assert np.mean(reload(out3).train.masks == np.where(both, expected, final.numpy())) > 0.999


def test_checkpoint_folder_and_its_labels(adele_run, tmp_path):
    """RUN_DIR may be one checkpoint; its 'labels' are what gets exported (edited here to prove it)."""
    ckpt = tmp_path / "run" / "checkpoints" / "epoch_0004"
    shutil.copytree(adele_run, tmp_path / "run")
    state = load_checkpoint(ckpt)
    state["labels"][:, :4, :4] = 3
    slim = {k: state[k] for k in ("labels", "model", "config")}  # a slimmed checkpoint loads too
    save_checkpoint(slim, ckpt)
    assert export(ckpt, "--out", tmp_path / "exp", "--labels", "run", "--epoch", "last") == 0
    assert np.array_equal(reload(tmp_path / "exp").train.masks, state["labels"].numpy())
    # no labels in the checkpoint: the run's initial (noisy) labels
    save_checkpoint({k: state[k] for k in ("model", "config")}, ckpt)
    assert export(ckpt, "--out", tmp_path / "exp2", "--labels", "run", "--epoch", "last") == 0
    noisy = prepare_data(load_trial_config(adele_run / "config.yaml")).noisy.numpy()
    assert np.array_equal(reload(tmp_path / "exp2").train.masks, noisy)


def test_folder_source_keeps_grey_codes_void_and_list_layout(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    stems = {"train": [f"a{i}" for i in range(6)], "val": ["b0", "b1"], "test": ["c0", "c1"]}
    for d in ("images", "masks"):
        (root / d).mkdir(parents=True)
    raw = np.zeros((32, 32), np.uint8)
    raw[8:20, 8:20] = 100
    raw[22:30, 2:12] = 200
    raw[0] = 50  # void row
    for split, names in stems.items():
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
        for s in names:
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"{s}.jpg")
            Image.fromarray(raw).save(root / "masks" / f"{s}.png")
    ds = {"name": "folder", "root": str(root), "class_names": ["bg", "x", "y"], "mask_values": [0, 100, 200],
          "ignore_value": 50}
    config = tmp_path / "trial.yaml"
    config.write_text(json.dumps({"dataset": ds, "noise": [{"kind": "pixel", "rate": 0.2}],
                                  "train": {"epochs": 1, "threads": 1, "batch_size": 3}}))
    run = train(tmp_path / "run", [], str(config))
    out = tmp_path / "exp"
    assert export(run, "--out", out, "--labels", "run", "--epoch", "last") == 0
    assert (out / "train.txt").read_text().split() == stems["train"] and (out / "images" / "a0.png").is_file()
    assert sorted(r["file"] for r in read_rows(out / "label_issues.csv")) == [f"images/{s}.jpg" for s in stems["train"]]
    masks = np.stack([np.asarray(Image.open(out / "masks" / f"{s}.png")) for s in stems["train"]])
    assert set(np.unique(masks)) == {0, 50, 100, 200}
    assert (masks[:, 0] == 50).all()  # void stays void, in the source's code
    cfg = load_trial_config(out / "config.yaml")
    assert cfg.dataset.options.mask_values == [0, 100, 200] and cfg.dataset.options.ignore_value == 50
    noisy = prepare_data(load_trial_config(run / "config.yaml")).noisy.numpy()
    assert np.array_equal(reload(out).train.masks, noisy)
    assert np.array_equal(reload(out).val.masks, create_dataset(load_trial_config(run / "config.yaml").dataset).val.masks)

    # a stem in two lists with different labels cannot be written flat: error, nothing left behind
    (root / "val.txt").write_text("a0\nb1\n")
    run2 = train(tmp_path / "run2", [], str(config))
    code = export(run2, "--out", tmp_path / "exp2", "--epoch", "last")
    assert code == 2 and not (tmp_path / "exp2").exists() and not list(tmp_path.glob(".exp2.tmp-*"))


def test_camvid_masks_keep_void_11(camvid_root, tmp_path):
    run = train(tmp_path / "run", ["dataset.name=camvid", f"dataset.root={camvid_root}", "dataset.size=[32, 64]",
                                   "dataset.max_images={train: 4, val: 2, test: 2}", "train.epochs=1",
                                   "train.threads=1", "noise=[{kind: morph, rate: 1.0}]"])
    out = tmp_path / "exp"
    assert export(run, "--out", out, "--labels", "run", "--epoch", "last") == 0
    raw = np.stack([np.asarray(Image.open(p)) for p in sorted((out / "masks" / "train").glob("*.png"))])
    assert raw.max() == 11 and 255 not in raw  # CamVid's own void value
    data = reload(out)
    assert np.array_equal(data.train.masks, last_state(run)["labels"].numpy())
    assert (data.train.masks == 255).any()
    assert data.class_names[0] == "Sky" and len(data.class_names) == 11
    files = sorted(r["file"] for r in read_rows(out / "label_issues.csv"))
    assert len(files) == 4 and all(f.startswith("train/") and (Path(camvid_root) / "CamVid" / f).is_file() for f in files)


def test_voc_palette_and_coding_registry(tmp_path):
    voc = parse_trial({"dataset": {"name": "voc", "root": "unused"}}).dataset
    coding = create_coding(voc)
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[0, 2:5, 2:5] = 15
    labels[1, 0] = 255
    split = ExportSplit(np.zeros((2, 8, 8, 3), np.uint8), labels, ["2007_000032", "2007_000033"])
    write_folder(tmp_path, {s: split for s in ("train", "val", "test")}, coding)
    im = Image.open(tmp_path / "masks" / "train" / "2007_000032.png")
    assert im.mode == "P" and im.getpalette()[15 * 3:15 * 3 + 3] == [192, 128, 128]  # VOC person colour
    assert im.getpalette() == voc_palette()
    names = [f"c{i}" for i in range(21)]
    ds = parse_trial({"dataset": {"name": "folder", "root": str(tmp_path), **coding.folder_options(names)}}).dataset
    assert np.array_equal(create_dataset(ds).train.masks, labels)
    with pytest.raises(UserError, match="no label writer for 'nope'; allowed: synthetic, camvid, voc, folder, segthor"):
        create_coding(type("Cfg", (), {"name": "nope"})())
    with pytest.raises(UserError, match="void without a code"):
        Coding(values=[0, 255], void=None).encode(np.array([[255, 7]], np.uint8), "x")


def test_segthor_volumes_keep_native_geometry(tmp_path):
    X, Y, Z = 32, 24, 4
    lps = np.diag([-1.0, -1.0, 2.5, 1.0])  # stored LPS: the writer must undo the loader's reorientation
    for num in (1, 2, 3):
        folder = tmp_path / f"Patient_{num:02d}"
        folder.mkdir()
        gt = np.zeros((X, Y, Z), np.uint8)
        gt[8:20, 6:14, 1] = 2
        gt[2:4, 2:4, 2] = 4
        nib.Nifti1Image(np.zeros((X, Y, Z), np.int16), lps).to_filename(folder / f"{folder.name}.nii.gz")
        nib.Nifti1Image(gt, lps).to_filename(folder / "GT.nii.gz")
    cfg = parse_trial({"dataset": {"name": "segthor", "root": str(tmp_path), "size": [12, 16]}}).dataset
    data = create_dataset(cfg)  # train: Patient_01 (slices 1, 2)
    assert data.train.names == ["Patient_01/001", "Patient_01/002"]
    old = data.train.masks.copy()
    new = old.copy()
    new[0, 0, 0] = 3  # one decoded pixel = a 2x2 voxel block at native size
    out = tmp_path / "out"
    written = write_segthor_volumes(out, str(tmp_path), data.train.names, new, old)
    assert [p.relative_to(out).as_posix() for p in written] == ["nifti/Patient_01/GT.nii.gz"]
    src, dst = nib.load(tmp_path / "Patient_01" / "GT.nii.gz"), nib.load(written[0])
    assert np.allclose(dst.affine, src.affine) and dst.shape == src.shape
    a, b = np.asanyarray(src.dataobj), np.asanyarray(dst.dataobj)
    diff = np.argwhere(a != b)
    assert len(diff) == 4 and set(diff[:, 2]) == {1} and set(b[a != b]) == {3}
    # read back through the SegTHOR loader: the decoded labels are the new ones
    shutil.copy(written[0], tmp_path / "Patient_01" / "GT.nii.gz")
    assert np.array_equal(create_dataset(cfg).train.masks, new)


def test_bad_input_one_line_exit_2_nothing_written(adele_run, tmp_path, capsys):
    def fails(*argv: str, match: str) -> None:
        capsys.readouterr()
        assert export(*argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err

    empty = tmp_path / "empty"
    empty.mkdir()
    fails(empty, "--out", tmp_path / "x", match="no checkpoint here")
    fails(tmp_path / "missing", "--out", tmp_path / "x", match="not found")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("")
    fails(adele_run, "--out", tmp_path / "busy", match="exists and is not empty")
    fails(adele_run, "--out", tmp_path / "x", "--seed", "0", match="not a study experiment folder")
    fails(adele_run, "--out", tmp_path / "x", "--tau", "0", match="--tau: got 0.0")
    fails(adele_run, "--out", tmp_path / "x", "--device", "gpu", match="--device: got 'gpu'")
    fails(adele_run, "--out", tmp_path / "x", "--cleanlab-jobs", "0", match="--cleanlab-jobs: got 0")
    broken = tmp_path / "broken"
    shutil.copytree(adele_run, broken)
    cfg_text = (broken / "config.yaml").read_text()
    (broken / "config.yaml").write_text(cfg_text.replace("  seed: 0\n", "  seed: 5\n", 1))  # other images
    assert load_trial_config(broken / "config.yaml").dataset.options.seed == 5
    fails(broken, "--out", tmp_path / "x", match="decode differently from when the run trained")
    (broken / "config.yaml").write_text(cfg_text)
    ckpt = run_mod.checkpoints(broken)[-1] / "state.pt"
    ckpt.write_bytes(b"not a checkpoint")
    fails(broken, "--out", tmp_path / "x", match="unreadable checkpoint")
    torch.save({"format": 99}, ckpt)
    fails(broken, "--out", tmp_path / "x", match="checkpoint format 99")
    run_mod.checkpoints(broken)[-1].joinpath("state.pt").unlink()
    for old in run_mod.checkpoints(broken):
        shutil.rmtree(old)
    fails(broken, "--out", tmp_path / "x", match="no checkpoint here")
    fails(broken, "--out", tmp_path / "deep" / "x", match="no checkpoint here")
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "busy", "empty"]


STUDY = """
name: tiny
metric: {name: best_val_miou, goal: maximize}
search: {algorithm: random, seed: 3, num_samples: 2, max_concurrent: 1}
scheduler: {type: none}
conditions:
  noise.0.rate: [1.0]
parameters:
  train.lr: {values: [0.01, 0.00001]}
trial:
  dataset: {name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}
  noise: [{kind: morph, rate: 1.0}]
  train: {epochs: 2, batch_size: 4, threads: 1, optimizer: adamw}
final: {seeds: [1], top_k: 1}  # fresh seeds: the search ran with seed 0
resources: {cpu: 1}
logging: {wandb: {mode: disabled}}
"""


def test_study_best_trial_and_replicate(tmp_path, ray_cluster):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(STUDY + f"storage: {{path: {tmp_path / 'studies'}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    env.update(PYTHONPATH=str(REPO), WANDB_MODE="disabled", RAY_ADDRESS=ray_cluster)  # the test run's Ray
    proc = subprocess.run([sys.executable, "-m", "study.run", str(spec)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "studies" / "tiny"
    assert export(exp, "--out", tmp_path / "best", "--labels", "run", "--epoch", "last") == 0  # the only condition
    summary = json.loads((tmp_path / "best" / "export.json").read_text())
    trial_dir = Path(summary["checkpoint"]).parent
    assert trial_dir.parent == exp / "rate-1.0"
    best_yaml = load_trial_config(exp / "report" / "best_rate-1.0.yaml")
    assert f"python -m trainables.export <storage>/tiny --condition <condition>" in (exp / "report" / "report.md").read_text()
    params = json.loads((trial_dir / "params.json").read_text())
    assert params["train.lr"] == best_yaml.train.lr
    finals = {}
    for p in (exp / "rate-1.0").glob("*/result.json"):
        last = json.loads(p.read_text().splitlines()[-1])
        finals[p.parent] = last["best_val_miou"]
    assert finals[trial_dir] == max(finals.values())
    labels = load_checkpoint(Path(summary["checkpoint"]))["labels"].numpy()
    assert np.array_equal(reload(tmp_path / "best").train.masks, labels)
    assert load_trial_config(tmp_path / "best" / "config.yaml").train.lr == best_yaml.train.lr

    assert export(exp, "--condition", "rate-1.0", "--seed", "1", "--out", tmp_path / "rep", "--epoch", "last") == 0
    rep = json.loads((tmp_path / "rep" / "export.json").read_text())
    rep_params = json.loads((Path(rep["checkpoint"]).parent / "params.json").read_text())
    assert Path(rep["checkpoint"]).parent.parent == exp / "rate-1.0-final"
    assert rep["run_metrics"]["epoch"] == 2
    assert rep_params["replica"]["seed"] == 1 and "replicate tuned seed 1" in rep["source"]
    assert export(exp, "--seed", "7", "--out", tmp_path / "none") == 2
    assert export(exp, "--condition", "rate-0.5", "--out", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_choose_epoch_rules_by_hand():
    names = ["background", "a", "b"]
    # foreground IoU f(t) = 0.8 (1 - exp(-0.5 t)) from epoch 1 (t = 0): f'(t) / f'(1) = exp(-0.5 (t - 1)),
    # so the relative change 1 - exp(-0.5 (t - 1)) first exceeds r = 0.9 at t = 6 (0.918; t = 5: 0.865):
    # the detector fires after the 7th epoch
    fg = [0.8 * (1 - np.exp(-0.5 * t)) for t in range(12)]
    rows = [{"epoch": e + 1, "train_iou/background": 0.9, "train_iou/a": v, "train_iou/b": v,
             "val_miou": [0.1, 0.5, 0.5, 0.3][e] if e < 4 else None} for e, v in enumerate(fg)]
    assert export_mod.early_learning_epoch(rows, names) == 7
    assert export_mod.early_learning_epoch(rows, names, pool="median") == 7
    assert export_mod.early_learning_epoch(rows[:6], names) is None  # not yet
    assert export_mod.ready_classes(rows, names, 6) == [0] and export_mod.ready_classes(rows, names, 7) == [0, 1, 2]
    late = [{**r, "train_iou/b": 0.0} for r in rows]  # class b never learned: never ready, never fires
    # class names as the engine writes them into metric keys (CamVid's "Sky" -> train_iou/sky)
    upper = [{("train_iou/" + k[10:].lower() if k.startswith("train_iou/") else k): v for k, v in r.items()}
             for r in rows]
    assert export_mod.trigger_epochs(upper, ["Background", "A", "Big Thing"]) == {"mean": 7, "classes": {1: 7, 2: None}}
    upper = [{**r, "train_iou/big_thing": r["train_iou/b"]} for r in upper]
    assert export_mod.trigger_epochs(upper, ["Background", "A", "Big Thing"])["classes"] == {1: 7, 2: 7}
    assert export_mod.trigger_epochs(late, names) == {"mean": 7, "classes": {1: 7, 2: None}}
    assert export_mod.ready_classes(late, names, 12) == [0, 1]
    assert export_mod.choose_epoch("early", rows, names) == 7
    assert export_mod.choose_epoch("early", rows[:6], names) == 6  # never fired: the last epoch
    assert export_mod.choose_epoch("best_val", rows, names) == 2  # earliest of the tied best
    assert export_mod.choose_epoch("last", rows, names) == 12 and export_mod.choose_epoch("3", rows, names) == 3
    with pytest.raises(UserError, match=r"--epoch: got '13'; allowed: last, early, best_val or an epoch the run"):
        export_mod.choose_epoch("13", rows, names)


def test_epoch_choice_uses_a_kept_checkpoint_or_replays_it_exactly(ce_run, tmp_path):
    kept = tmp_path / "kept"
    assert export(ce_run, "--out", kept, "--epoch", "1", "--labels", "confident") == 0
    s_kept = json.loads((kept / "export.json").read_text())
    assert s_kept["epoch"] == 1 and not s_kept["replayed"] and s_kept["checkpoint"].endswith("epoch_0001")
    assert s_kept["run_metrics"]["epoch"] == 1
    run = tmp_path / "run"
    shutil.copytree(ce_run, run)
    shutil.rmtree(run / "checkpoints" / "epoch_0001")  # as a finished trial that kept only its last ones
    again = tmp_path / "again"
    assert export(run, "--out", again, "--epoch", "1", "--labels", "confident") == 0
    s_again = json.loads((again / "export.json").read_text())
    assert s_again["epoch"] == 1 and s_again["replayed"]
    # the replayed model is the run's own epoch-1 model: the same scores, the same exported labels
    assert (again / "label_issues.csv").read_text() == (kept / "label_issues.csv").read_text()
    assert np.array_equal(reload(again).train.masks, reload(kept).train.masks)
    last = tmp_path / "last"
    assert export(ce_run, "--out", last, "--labels", "confident", "--epoch", "last") == 0
    assert (last / "label_issues.csv").read_text() != (kept / "label_issues.csv").read_text()
    assert export(ce_run, "--out", tmp_path / "bad", "--epoch", "soon") == 2
    # the defaults: confident labels of the early-learning checkpoint
    default = tmp_path / "default"
    assert export(ce_run, "--out", default) == 0
    s_default = json.loads((default / "export.json").read_text())
    assert s_default["labels"] == "confident" and s_default["epoch_rule"] == "early"
    rows = [json.loads(line) for line in (ce_run / "metrics.jsonl").read_text().splitlines()]
    assert s_default["epoch"] == export_mod.choose_epoch("early", rows, reload(default).class_names)
