"""The names of the metrics a trial reports (``engine.Trainer.run_epoch``), for checking a study's
``metric.name`` before anything runs. ``tests/trainables/test_metric_names.py`` runs real epochs and
fails when the engine reports a name this module does not know, or stops reporting one it lists.
"""
from __future__ import annotations

# every epoch
EPOCH = ("epoch", "lr", "images_per_s", "train_loss", "train_miou", "iou_el", "iou_m", "label_miou",
         "relabel/pixels", "relabel/precision", "relabel/net_fixed", "noise_miou", "epoch_time_s")
# evaluation epochs (every eval_every epochs and the last)
EVALUATION = ("val_miou", "test_miou", "val_acc", "test_acc")
# the papers' summary, from the first evaluation on
SUMMARY = ("best_val_miou", "best_val_epoch", "best_val", "max_test", "last")
# per class: <prefix>/<class name>
PER_CLASS = ("train_iou", "label_iou", "val_iou", "test_iou")
# defined by the method: loss/<term> (its loss terms), method/<diagnostic>
METHOD_PREFIXES = ("loss", "method")
# added by the Ray adapter to every result, and by the engine on the epoch a trial diverged
ADAPTER = ("epochs_total",)
DIVERGED = ("diverged", "diverged_epoch", "diverged_reason")

FIXED = EPOCH + EVALUATION + SUMMARY + ADAPTER + DIVERGED


def is_metric(name: str) -> bool:
    """True when a trial may report ``name`` (per-class and method names by their prefix)."""
    if name in FIXED:
        return True
    prefix, sep, rest = name.partition("/")
    return bool(sep and rest) and (prefix in PER_CLASS or prefix in METHOD_PREFIXES)


def known_names() -> list[str]:
    """The fixed names and the prefixed families, for error messages and suggestions."""
    return [*FIXED, *(f"{p}/<class>" for p in PER_CLASS), *(f"{p}/<name>" for p in METHOD_PREFIXES)]
