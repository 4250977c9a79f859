"""``python -m trainables.export RUN_DIR --out DIR``: from a finished run to better annotations.

RUN_DIR is a run of ``python -m trainables.run`` (its last checkpoint), a checkpoint folder
(``state.pt``), a Ray trial folder of a study (``checkpoint_*/state.pt`` + ``params.json``), or a
study experiment folder (``study.yaml``): then ``--condition`` picks the condition (optional when
there is one), and the export is of its best search trial (the report's rule: the best full-budget
trial by the study metric, the trial of ``best_<condition>.yaml``) or, with ``--seed``, of that
replicate (``--replica``: ``tuned``, the default, or a baseline's name).

The model that judges the labels is the run's at ``--epoch`` (default ``early``: the median of the
foreground classes' trigger epochs of ADELE's early-learning detector replayed on the run's own
training-IoU curves, see :func:`trigger_epochs`; ``last``, ``best_val`` or a number); a checkpoint
the run no longer keeps is trained again from scratch to that epoch (:func:`replay`).

DIR receives:

- ``images/`` + ``masks/`` (+ ``<split>.txt``): a ``folder`` dataset in the source's mask coding
  (see ``label_writers``) whose training masks are the labels the run had at that epoch (ADELE:
  after its corrections) and, with ``--labels confident`` (default), every pixel the model predicts
  with max probability >= ``--tau`` takes that prediction, with ``--labels cleanlab`` every pixel
  cleanlab's confident learning flags (``label_issues.cleanlab_issues``); both only between
  background and the classes learned by that epoch (:func:`ready_classes`; ``--all-classes``: any);
  val/test masks are the labels the run evaluated on;
- ``config.yaml``: a trial config training ``ce`` on that folder dataset with the run's model and
  training settings (``python -m trainables.run DIR/config.yaml --out ...``);
- ``label_issues.csv`` (every training image, most suspect first by ``--rank-by``; see ``label_issues``) and
  ``label_issues_classes.csv``; scores judge the original training labels (the dataset's masks after
  any configured noise) against the model's predictions from one eval-mode pass over the
  un-augmented training images;
- ``suspects.png``: image | label | model | difference of the ``--top-k`` most suspect images;
- ``export.json``: where it came from and what changed. SegTHOR also gets ``nifti/``.

Bad input (no checkpoint, unreadable or foreign checkpoint, unknown dataset) prints one line and
exits with status 2; nothing is written (the export is built in a temporary folder and renamed).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import UserError
from .export_source import Source, load_source, resolve_source
from .label_issues import RANKINGS
from .tables import write_csv

LABEL_MODES = ("run", "confident", "cleanlab")
DEFAULT_LABELS = "confident"  # measured best: docs/results.md, label export
DEFAULT_RANK_BY = "disagreement"
RUN_METRICS = ("epoch", "best_val", "max_test", "last", "val_miou", "test_miou", "label_miou", "noise_miou")


# -- the model's view of the training images --------------------------------------------------------

def predict(cfg, model_state: dict, images: np.ndarray, tau: float, num_classes: int, device: str = "auto"):
    """One eval-mode pass over the un-augmented training images -> label_issues.Predictions (with the
    softmax probabilities, float32 [N, K, H, W], for cleanlab)."""
    import torch

    from .engine import MEAN, STD, resolve_device
    from .label_issues import Predictions
    from .models import create_model

    dev = resolve_device(device)
    model = create_model(dataclasses.replace(cfg.model, encoder_weights=None), num_classes)
    try:
        model.load_state_dict(model_state)
    except RuntimeError as exc:
        raise UserError(f"checkpoint model does not match model {cfg.model.arch}/{cfg.model.encoder} with "
                        f"{num_classes} classes ({str(exc).splitlines()[0][:160]})") from None
    model.to(dev).eval()
    mean, std = MEAN.to(dev), STD.to(dev)
    bs = cfg.train.eval_batch_size or 2 * cfg.train.batch_size
    parts = []
    with torch.no_grad():
        for a in range(0, len(images), bs):
            x = torch.from_numpy(np.ascontiguousarray(images[a:a + bs])).to(dev).permute(0, 3, 1, 2).float().div_(255)
            probs = torch.softmax(model((x - mean) / std).float(), dim=1)
            parts.append(Predictions.from_probs(probs, tau))
    return Predictions.concat(parts)


# -- which epoch: the early-learning estimate from the run's own training curves ---------------------

def _first_trigger(curve: np.ndarray, epochs: list[int], r: float, jump: float, min_points: int) -> int | None:
    from .methods._early_learning import learning_start, trigger_test

    for e in range(len(curve)):
        seg = curve[: e + 1]
        if trigger_test(seg, learning_start(seg, "jump", jump), r, len(curve), min_points=min_points).triggered:
            return epochs[e]
    return None


def trigger_epochs(rows: list[dict], class_names: list[str], *, r: float = 0.9, jump: float = 0.1,
                   min_points: int = 3) -> dict:
    """ADELE's early-learning detector (``methods._early_learning``: learning start by a ``jump`` in
    one epoch, the fit f(t) = a (1 - exp(-b t^c)), trigger when f' has fallen by ``r``) replayed
    epoch by epoch on the run's ``train_iou/<class>`` curves (its predictions vs the labels it
    trained on: no clean labels). Returns ``{"mean": epoch, "classes": {class id: epoch}}`` with
    the 1-based epoch at which the mean foreground curve (ADELE's one trigger for all) and each
    foreground class first fire (None: never)."""
    from .engine import metric_key  # the engine's spelling of class names in metric keys

    keys = [f"train_iou/{metric_key(c)}" for c in class_names]
    y = np.array([[row.get(key) for key in keys] for row in rows], dtype=np.float64)
    y = np.nan_to_num(y, nan=0.0)
    epochs = [int(row["epoch"]) for row in rows]
    fg = y[:, 1:]
    return {"mean": _first_trigger(fg.mean(axis=1), epochs, r, jump, min_points),
            "classes": {c: _first_trigger(y[:, c], epochs, r, jump, min_points) for c in range(1, y.shape[1])}}


def early_learning_epoch(rows: list[dict], class_names: list[str], *, pool: str = "mean", **kwargs) -> int | None:
    """The early-learning epoch of :func:`trigger_epochs`: ``pool`` ``mean``: when the mean foreground
    curve fires; ``median``: the median of the classes' own trigger epochs (classes that never fire
    left out). None when nothing fires."""
    if pool not in ("mean", "median"):
        raise ValueError(f"pool: got {pool!r}; allowed: mean, median")
    fired = trigger_epochs(rows, class_names, **kwargs)
    if pool == "mean":
        return fired["mean"]
    own = [e for e in fired["classes"].values() if e is not None]
    return int(np.median(own)) if own else None


def ready_classes(rows: list[dict], class_names: list[str], epoch: int) -> list[int]:
    """Class 0 (background) and the foreground classes whose own detector has fired by ``epoch``:
    the classes the model has learned and is about to memorise (ADELE corrects exactly these)."""
    fired = trigger_epochs(rows, class_names)["classes"]
    return [0] + [c for c, e in fired.items() if e is not None and e <= epoch]


EPOCH_RULES = ("last", "early", "best_val")
DEFAULT_EPOCH = "early"  # measured best: docs/results.md, label export


def choose_epoch(rule: str, rows: list[dict], class_names: list[str]) -> int:
    """The epoch (1-based) ``rule`` picks from the run's reported metrics ``rows``: ``last``;
    ``early``: :func:`early_learning_epoch` with ``pool="median"`` (the median of the foreground
    classes' trigger epochs; the last epoch when no class fires);
    ``best_val``: the best ``val_miou`` (earliest on ties); or a number."""
    if not rows:
        raise UserError("--epoch: the run reported no metrics (no metrics.jsonl / result.json beside the checkpoint)")
    epochs = [int(r["epoch"]) for r in rows]
    if rule == "last":
        return epochs[-1]
    if rule == "early":
        return early_learning_epoch(rows, class_names, pool="median") or epochs[-1]
    if rule == "best_val":
        val = [(r["val_miou"], -int(r["epoch"])) for r in rows if r.get("val_miou") is not None]
        if not val:
            raise UserError("--epoch best_val: the run reported no val_miou")
        return -max(val)[1]
    if rule.isdigit() and int(rule) in epochs:
        return int(rule)
    raise UserError(f"--epoch: got {rule!r}; allowed: {', '.join(EPOCH_RULES)} or an epoch the run reported "
                    f"({epochs[0]}..{epochs[-1]})")


def replay(cfg, data, epoch: int) -> dict:
    """The run's state after ``epoch`` epochs, trained again from scratch with its config (same seed,
    schedule over the full ``train.epochs``, method): bitwise the run's own at the same
    ``train.threads`` on the same device, so a finished trial need not keep that checkpoint."""
    from .engine import Trainer, prepare_data

    trainer = Trainer(cfg, prepare_data(cfg, data))
    while trainer.epoch < epoch:
        metrics, _ = trainer.run_epoch()
        if metrics.get("diverged"):
            raise UserError(f"--epoch {epoch}: the replay diverged at epoch {trainer.epoch}")
    return {"model": trainer.model.state_dict(), "labels": trainer.labels.detach().cpu(), "epoch": trainer.epoch}


# -- the export ------------------------------------------------------------------------------------

def check_options(out: Path, *, labels_mode: str, tau: float, top_k: int, device: str, threads: int | None,
                  rank_by: str, cleanlab_jobs: int, epoch_rule: str) -> None:
    """One line naming the option for each bad value, before anything is loaded."""
    if labels_mode not in LABEL_MODES:
        raise UserError(f"--labels: got {labels_mode!r}; allowed: {', '.join(LABEL_MODES)}")
    if not 0.0 < tau <= 1.0:
        raise UserError(f"--tau: got {tau}; allowed: 0 < tau <= 1")
    if rank_by not in RANKINGS:
        raise UserError(f"--rank-by: got {rank_by!r}; allowed: {', '.join(RANKINGS)}")
    if epoch_rule not in EPOCH_RULES and not epoch_rule.isdigit():
        raise UserError(f"--epoch: got {epoch_rule!r}; allowed: {', '.join(EPOCH_RULES)} or an epoch number")
    if cleanlab_jobs < 1:
        raise UserError(f"--cleanlab-jobs: got {cleanlab_jobs}; allowed: 1 or more")
    if top_k < 0:
        raise UserError(f"--top-k: got {top_k}; allowed: 0 or more")
    if threads is not None and threads < 1:
        raise UserError(f"--threads: got {threads}; allowed: 1 or more")
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UserError(f"--device: got {device!r}; allowed: auto, cpu, cuda, cuda:N")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: exists and is not empty; choose another --out")


@dataclasses.dataclass
class Computed:
    """What an export computes from its source, before anything is rendered or written."""
    cfg: object  # TrialConfig of the run
    data: object  # the run's dataset (create_dataset)
    td: object  # the prepared training data (engine.prepare_data)
    coding: object  # label_writers.Coding of the dataset's masks
    state: dict  # the checkpoint state used (or replayed)
    checkpoint: Path
    replayed: bool
    metrics: dict  # the run's metrics at the epoch used
    original: np.ndarray  # the noisy training labels the run started from
    run_labels: np.ndarray  # the labels the run ended with (its corrections)
    exported: np.ndarray  # the labels written
    ready: list[int]  # the classes labels may change between
    images: np.ndarray  # training images
    preds: object  # predict()'s output on the training images
    issues: object  # label_issues.rank_label_issues's output, with the export's per-image columns
    corrected: np.ndarray  # per image: pixels the run changed
    changed: np.ndarray  # per image: pixels the export changed


def compute_export(source: Source, *, labels_mode: str, tau: float, device: str, threads: int | None, rank_by: str,
                   cleanlab_jobs: int, epoch_rule: str, all_classes: bool) -> Computed:
    """Load the run (at the epoch ``epoch_rule`` picks), predict the training set, rank its label
    issues and choose the labels to export."""
    import torch

    from .data import create_dataset
    from .engine import prepare_data
    from .label_issues import confident_labels, flagged_labels, rank_label_issues
    from .label_writers import create_coding

    cfg, state = load_source(source)
    metrics = source.run_metrics()
    coding = create_coding(cfg.dataset)
    threads = threads or cfg.train.threads
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    data = create_dataset(cfg.dataset)
    td = prepare_data(cfg, data)
    k, ignore = len(td.class_names), td.ignore_index
    reported = metrics.get("noise_miou")
    if reported is not None and abs(reported - td.noise_miou) > 1e-6:
        raise UserError(f"{source.checkpoint}: the training data decode differently from when the run trained "
                        f"(noise_miou {td.noise_miou:.6f} now, {reported:.6f} in the run's metrics); export with "
                        "the data and code version the run used")
    checkpoint, replayed = source.checkpoint, False
    if epoch_rule != "last":  # default: the checkpoint as resolved
        rows = source.history()
        target = choose_epoch(epoch_rule, rows, td.class_names)
        kept = source.checkpoint.parent / f"epoch_{target:04d}"
        if state.get("epoch") == target:
            pass
        elif source.checkpoint.name.startswith("epoch_") and (kept / "state.pt").is_file():
            checkpoint = kept
            cfg, state = load_source(dataclasses.replace(source, checkpoint=kept))
        else:
            state, replayed = replay(cfg, data, target), True
        metrics = next((r for r in rows if int(r["epoch"]) == target), metrics)
    original = td.noisy.numpy()
    run_labels = original
    if "labels" in state:
        run_labels = np.asarray(state["labels"].cpu().numpy() if hasattr(state["labels"], "cpu") else state["labels"])
        if run_labels.shape != original.shape:
            raise UserError(f"{source.checkpoint / 'state.pt'}: labels of shape {run_labels.shape} but the dataset "
                            f"decodes to {original.shape}; the data changed since the run")
        run_labels = run_labels.astype(np.uint8)
    images = td.images["train"].numpy()
    preds = predict(cfg, state["model"], images, tau, k, device)
    files = (data.meta.get("files") or {}).get("train")
    issues = rank_label_issues(original, preds, k, ignore, data.train.names, td.class_names, rank_by=rank_by,
                               n_jobs=cleanlab_jobs, files=files)
    if labels_mode == "confident":
        exported = confident_labels(run_labels, preds, ignore)
    elif labels_mode == "cleanlab":
        exported = flagged_labels(run_labels, issues.flags, preds.argmax, ignore)
    else:
        exported = run_labels
    ready = list(range(k))
    if labels_mode != "run" and not all_classes:
        # only between classes the model has learned by this epoch (the detector on its own curves):
        # a class not yet learned would be overwritten by confident wrong predictions
        rows = source.history()
        used = state.get("epoch", metrics.get("epoch"))
        if rows and used is not None:
            ready = ready_classes([r for r in rows if int(r["epoch"]) <= used] or rows, td.class_names, int(used))
        keep = ~(np.isin(run_labels, ready) & np.isin(exported, ready))
        exported = np.where(keep, run_labels, exported)

    # per-image columns only the export knows: what the run / the export changed, injected noise
    n = len(original)
    flat = lambda a: a.reshape(n, -1)  # noqa: E731
    corrected = (flat(run_labels) != flat(original)).sum(1)
    changed = (flat(exported) != flat(original)).sum(1)
    clean_train = td.clean["train"].numpy()
    both = (flat(original) != ignore) & (flat(clean_train) != ignore)
    injected = ((flat(original) != flat(clean_train)) & both).sum(1) / np.maximum(both.sum(1), 1)
    for row in issues.images:
        i = row["index"]
        row["corrected_pixels"] = int(corrected[i])
        row["exported_changed_pixels"] = int(changed[i])
        if cfg.noise:
            row["injected_noise"] = round(float(injected[i]), 6)
    return Computed(cfg=cfg, data=data, td=td, coding=coding, state=state, checkpoint=checkpoint, replayed=replayed,
                    metrics=metrics, original=original, run_labels=run_labels, exported=exported, ready=ready,
                    images=images, preds=preds, issues=issues, corrected=corrected, changed=changed)


@dataclasses.dataclass
class Rendered:
    """The export's files as values: the dataset splits, the contact sheet, the retrain config and
    export.json's contents (``files.nifti`` is added when SegTHOR volumes are written)."""
    splits: dict  # split -> label_writers.ExportSplit
    sheet: object  # PIL image of the top suspects
    config_yaml: str
    summary: dict


def render_export(c: Computed, source: Source, out: Path, *, labels_mode: str, tau: float, top_k: int, rank_by: str,
                  epoch_rule: str) -> Rendered:
    """The export's contents for the folder ``out`` (absolute: the retrain config points at it)."""
    import torch

    from .config import dump_trial_config, parse_trial
    from .contact_sheet import contact_sheet
    from .label_writers import ExportSplit
    from .metrics import label_miou

    cfg, td, data, state, metrics = c.cfg, c.td, c.data, c.state, c.metrics
    k, ignore, n = len(td.class_names), td.ignore_index, len(c.original)
    splits = {"train": ExportSplit(c.images, c.exported, list(data.train.names))}
    for split in ("val", "test"):
        splits[split] = ExportSplit(td.images[split].numpy(), td.clean[split].numpy(), list(data.splits()[split].names))
    column = RANKINGS[rank_by][0]
    marked = c.issues.flags if rank_by.startswith("cleanlab") else c.preds.confident
    sheet = contact_sheet(c.images, c.original, c.preds.argmax, marked, c.issues.order, list(data.train.names),
                          c.issues.scores[column], top_k, ignore, score_name=column)

    retrain = cfg.to_dict()
    retrain["dataset"] = {"name": "folder", "root": str(out), "size": retrain["dataset"].get("size"),
                          **c.coding.folder_options(td.class_names)}
    retrain["noise"] = []
    retrain["method"] = {"name": "ce"}
    config_yaml = dump_trial_config(parse_trial(retrain, "export config"))

    summary = {
        "source": source.description, "checkpoint": str(c.checkpoint.absolute()),
        "epoch_rule": epoch_rule, "epoch": state.get("epoch", metrics.get("epoch")), "replayed": c.replayed,
        "classes_changed": [td.class_names[i] for i in c.ready] if labels_mode != "run" else [],
        "dataset": cfg.dataset.name, "method": cfg.method.name, "labels": labels_mode, "tau": tau, "rank_by": rank_by,
        "pixels_flagged_by_cleanlab": int(c.issues.flags.sum()),
        "images": {s: len(sp.names) for s, sp in splits.items()},
        "pixels_corrected_by_run": int(c.corrected.sum()), "pixels_changed_by_export": int(c.changed.sum()),
        "images_changed_by_export": int((c.changed > 0).sum()),
        "run_metrics": {key: metrics.get(key) for key in RUN_METRICS if key in metrics},
        "top_k": min(top_k, n), "files": {"dataset": "images/, masks/", "config": "config.yaml",
                                          "issues": "label_issues.csv", "classes": "label_issues_classes.csv",
                                          "sheet": "suspects.png"},
    }
    if cfg.noise:  # the dataset's masks are the clean reference the injected noise was measured against
        t_orig, t_exp, t_clean = (torch.from_numpy(a) for a in (c.original, c.exported, td.clean["train"].numpy()))
        summary["label_miou"] = {"original_vs_clean": label_miou(t_orig, t_clean, k, ignore),
                                 "exported_vs_clean": label_miou(t_exp, t_clean, k, ignore)}
    return Rendered(splits=splits, sheet=sheet, config_yaml=config_yaml, summary=summary)


def write_export(c: Computed, r: Rendered, out: Path) -> dict:
    """Write the export in a temporary folder beside ``out`` (absolute), then rename it to ``out``;
    on failure nothing is left (not even the parents it created). Returns export.json's contents."""
    from .label_writers import write_folder, write_segthor_volumes

    cfg, data = c.cfg, c.data
    created = [p for p in reversed(out.parents) if not p.exists()]  # removed again on failure
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_folder(tmp, r.splits, c.coding, lists=cfg.dataset.name == "folder" and data.meta.get("layout") == "lists")
        if cfg.dataset.name == "segthor":
            nifti = [str(p.relative_to(tmp)) for p in
                     write_segthor_volumes(tmp, cfg.dataset.root, list(data.train.names), c.exported, c.original)]
            if nifti:
                r.summary["files"]["nifti"] = nifti
        write_csv(tmp / "label_issues.csv", c.issues.images)
        write_csv(tmp / "label_issues_classes.csv", c.issues.classes)
        r.sheet.save(tmp / "suspects.png")
        (tmp / "config.yaml").write_text(r.config_yaml)
        (tmp / "export.json").write_text(json.dumps(r.summary, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return r.summary


def export_run(source: Source, out: Path, *, labels_mode: str = DEFAULT_LABELS, tau: float = 0.7, top_k: int = 16,
               device: str = "auto", threads: int | None = None, rank_by: str = DEFAULT_RANK_BY,
               cleanlab_jobs: int = 1, epoch_rule: str = DEFAULT_EPOCH, all_classes: bool = False) -> dict:
    """Build the export of ``source`` in a temporary folder beside ``out``, then rename it to ``out``.
    Returns the contents of export.json."""
    check_options(out, labels_mode=labels_mode, tau=tau, top_k=top_k, device=device, threads=threads,
                  rank_by=rank_by, cleanlab_jobs=cleanlab_jobs, epoch_rule=epoch_rule)
    computed = compute_export(source, labels_mode=labels_mode, tau=tau, device=device, threads=threads,
                              rank_by=rank_by, cleanlab_jobs=cleanlab_jobs, epoch_rule=epoch_rule,
                              all_classes=all_classes)
    out = out.absolute()
    rendered = render_export(computed, source, out, labels_mode=labels_mode, tau=tau, top_k=top_k, rank_by=rank_by,
                             epoch_rule=epoch_rule)
    return write_export(computed, rendered, out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m trainables.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="run directory, checkpoint folder, Ray trial folder or study folder")
    ap.add_argument("--out", type=Path, required=True, help="export folder (must not exist or be empty)")
    ap.add_argument("--condition", help="study condition (folder name, e.g. rate-1.0); default: the only one")
    ap.add_argument("--seed", type=int, help="study: export the replicate with this seed instead of the best trial")
    ap.add_argument("--replica", default="tuned",
                    help="study, with --seed: the replicated configuration, tuned (default), tuned#2, ... or a "
                         "baseline's name")
    ap.add_argument("--labels", default=DEFAULT_LABELS, choices=LABEL_MODES,
                    help="run: the labels the run ended with; confident: plus the model's predictions >= tau; "
                         f"cleanlab: plus the model's argmax on the pixels cleanlab flags (default {DEFAULT_LABELS})")
    ap.add_argument("--rank-by", default=DEFAULT_RANK_BY, choices=list(RANKINGS),
                    help="the suspect ranking: disagreement (share of pixels the confident model relabels), "
                         "cleanlab_issues (cleanlab's num_pixel_issues), cleanlab_softmin, iou "
                         f"(default {DEFAULT_RANK_BY})")
    ap.add_argument("--cleanlab-jobs", type=int, default=1, help="cleanlab's processes (default 1)")
    ap.add_argument("--all-classes", action="store_true",
                    help="--labels confident/cleanlab: change pixels of every class; default: only between "
                         "background and the classes whose early-learning detector has fired by the epoch used")
    ap.add_argument("--epoch", default=DEFAULT_EPOCH,
                    help="which model judges the labels: last (the checkpoint as given), early (where ADELE's "
                         "early-learning detector, replayed on the run's training-IoU curves, fires), best_val, "
                         "or an epoch number; a checkpoint the run no longer keeps is trained again from scratch "
                         f"to that epoch with the run's config (default {DEFAULT_EPOCH})")
    ap.add_argument("--tau", type=float, default=0.7, help="confidence threshold (max probability), default 0.7")
    ap.add_argument("--top-k", type=int, default=16, help="images on the contact sheet (default 16)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    ap.add_argument("--threads", type=int, help="torch threads (default: the run's train.threads)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source = resolve_source(args.run_dir, args.condition, args.seed, args.replica)
        summary = export_run(source, args.out, labels_mode=args.labels, tau=args.tau, top_k=args.top_k,
                             device=args.device, threads=args.threads, rank_by=args.rank_by,
                             cleanlab_jobs=args.cleanlab_jobs, epoch_rule=args.epoch, all_classes=args.all_classes)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"export: {summary['source']} -> {args.out} ({summary['pixels_changed_by_export']} training pixels "
          f"changed in {summary['images_changed_by_export']} images; suspects: {args.out / 'label_issues.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
