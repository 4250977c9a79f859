"""Rank training images by how likely their annotation is wrong: pure functions of (labels, the
model's per-pixel predictions, ignore_index), no files, no model.

Per image (every score skips void label pixels):

- ``disagreement``: the share of labelled pixels where the model is confident (max probability
  >= tau) and its prediction differs from the label; the ranking score (largest first);
- ``removed/<class>`` / ``added/<class>``: pixels the confident prediction takes from / gives to
  each class (labelled c but confidently predicted otherwise / the reverse);
- ``iou``: mean IoU of label vs the model's argmax over the classes present in either;
- ``self_confidence``: cleanlab-style label quality for comparison (cleanlab's segmentation
  ``get_label_quality_scores`` default): per-pixel self-confidence p(label), pooled per image by
  softmin with temperature 0.1 (sum_i s_i softmax(-s / T)_i). Low = suspect. Needs probabilities.

Per class (over the whole set): labelled / confidently predicted pixels, removed, added, the
label-vs-argmax IoU and the number of images whose class would change.

Ties in the ranking break by lower IoU, then by image index, so the order is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOT_CONFIDENT = 255  # code of a pixel whose prediction is unknown / below tau in a confident map
SOFTMIN_TEMPERATURE = 0.1  # cleanlab's default for segmentation
CHUNK = 64  # images per counting step (bounds the int64 temporaries)


@dataclass(frozen=True)
class Predictions:
    """What the ranking needs of a model's output, per pixel: ``argmax`` uint8 [N, H, W]
    (NOT_CONFIDENT where unknown), ``confident`` bool [N, H, W], ``self_confidence`` float32
    [N, H, W] = p(label) (NaN on void), or None when only hard predictions are known."""

    argmax: np.ndarray
    confident: np.ndarray
    self_confidence: np.ndarray | None = None

    @classmethod
    def from_probs(cls, probs, labels: np.ndarray, tau: float, ignore_index: int = 255) -> "Predictions":
        """From softmax probabilities [N, K, H, W] (numpy or torch) and the labels they are judged
        against; a pixel is confident when its largest probability is at least ``tau``."""
        p = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
        labels = np.asarray(labels)
        _check_shapes(labels, p.shape[:1] + p.shape[2:])
        argmax = p.argmax(axis=1).astype(np.uint8)
        confident = p.max(axis=1) >= tau
        void = labels == ignore_index
        index = np.where(void, 0, labels).astype(np.intp)[:, None]
        if (index >= p.shape[1]).any():
            raise ValueError(f"labels hold class ids >= {p.shape[1]} (the number of classes) other than void {ignore_index}")
        own = np.take_along_axis(p, index, axis=1)[:, 0].astype(np.float32)
        return cls(argmax, confident, np.where(void, np.nan, own).astype(np.float32))

    @classmethod
    def from_confident(cls, confident_pred: np.ndarray) -> "Predictions":
        """From a confident-prediction map: class id where confident, NOT_CONFIDENT elsewhere."""
        pred = np.asarray(confident_pred).astype(np.uint8)
        return cls(pred, pred != NOT_CONFIDENT, None)

    @staticmethod
    def concat(parts: list["Predictions"]) -> "Predictions":
        sc = None if any(p.self_confidence is None for p in parts) else np.concatenate([p.self_confidence for p in parts])
        return Predictions(np.concatenate([p.argmax for p in parts]), np.concatenate([p.confident for p in parts]), sc)


@dataclass
class LabelIssues:
    """``scores``: name -> per-image array in image order; ``order``: image indices, most suspect
    first; ``images`` / ``classes``: rows for the CSV files (images in rank order)."""

    scores: dict[str, np.ndarray]
    order: np.ndarray
    images: list[dict]
    classes: list[dict]


def softmin_pool(scores: np.ndarray, temperature: float = SOFTMIN_TEMPERATURE) -> float:
    """cleanlab's per-image pooling: sum_i s_i softmax(-s / T)_i over the finite ``scores``; NaN
    when there are none."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan")
    w = np.exp(-(s - s.min()) / temperature)  # shifted for stability; the weights are unchanged
    return float((s * w).sum() / w.sum())


def confident_labels(labels: np.ndarray, predictions: Predictions, ignore_index: int = 255) -> np.ndarray:
    """The labels with every confidently predicted, non-void pixel replaced by the prediction (a new
    array; void stays void)."""
    labels = np.asarray(labels)
    _check_shapes(labels, predictions.argmax.shape)
    take = predictions.confident & (labels != ignore_index) & (predictions.argmax != NOT_CONFIDENT)
    return np.where(take, predictions.argmax, labels).astype(labels.dtype)


def _check_shapes(labels: np.ndarray, shape: tuple) -> None:
    if labels.ndim != 3 or tuple(labels.shape) != tuple(shape):
        raise ValueError(f"labels have shape {tuple(labels.shape)}; the predictions cover {tuple(shape)} "
                         "(expected [N, H, W] for both)")


def rank_label_issues(labels: np.ndarray, predictions: Predictions, num_classes: int, ignore_index: int = 255,
                      names: list[str] | None = None, class_names: list[str] | None = None) -> LabelIssues:
    """Score and rank every image of ``labels`` uint8 [N, H, W] against ``predictions``.
    ``names``: image names for the rows (default: the index); ``class_names``: column suffixes."""
    labels = np.asarray(labels)
    _check_shapes(labels, predictions.argmax.shape)
    k = int(num_classes)
    bad = (labels >= k) & (labels != ignore_index)
    if bad.any():
        raise ValueError(f"labels hold value {int(labels[bad][0])}: not a class id below {k} nor void {ignore_index}")
    cnames = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(cnames) != k:
        raise ValueError(f"{len(cnames)} class names for {k} classes")
    n = len(labels)
    names = list(names) if names is not None else [str(i) for i in range(n)]

    stats = [_chunk_stats(labels[a:a + CHUNK], predictions.argmax[a:a + CHUNK], predictions.confident[a:a + CHUNK],
                          k, ignore_index) for a in range(0, n, CHUNK)]
    labelled, disagree, removed, added, conf_mat = (np.concatenate([s[j] for s in stats]) for j in range(5))
    pred_pix = sum(s[5] for s in stats)
    disagreement = np.where(labelled > 0, disagree / np.maximum(labelled, 1), 0.0)
    inter = np.einsum("nkk->nk", conf_mat)
    union = conf_mat.sum(2) + conf_mat.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    iou = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in per_class])

    scores: dict[str, np.ndarray] = {"disagreement": disagreement.astype(np.float64), "iou": iou,
                                     "disagree_pixels": disagree, "labelled_pixels": labelled}
    if predictions.self_confidence is not None:
        sc = predictions.self_confidence.reshape(n, -1)
        flat = labels.reshape(n, -1)
        scores["self_confidence"] = np.array([softmin_pool(sc[i][flat[i] != ignore_index]) for i in range(n)])

    iou_key = np.where(np.isnan(iou), np.inf, iou)
    order = np.lexsort((np.arange(n), iou_key, -disagreement))  # last key is primary

    images = []
    for rank, i in enumerate(order, 1):
        row = {"rank": rank, "index": int(i), "name": names[i], "disagreement": round(float(disagreement[i]), 6),
               "disagree_pixels": int(disagree[i]), "labelled_pixels": int(labelled[i]),
               "iou": None if np.isnan(iou[i]) else round(float(iou[i]), 6)}
        if "self_confidence" in scores:
            v = scores["self_confidence"][i]
            row["self_confidence"] = None if np.isnan(v) else round(float(v), 6)
        row.update({f"removed/{c}": int(removed[i, j]) for j, c in enumerate(cnames)})
        row.update({f"added/{c}": int(added[i, j]) for j, c in enumerate(cnames)})
        images.append(row)

    total = conf_mat.sum(0)
    t_inter, t_union = np.diag(total), total.sum(1) + total.sum(0) - np.diag(total)
    lab_pix = np.bincount(labels[labels != ignore_index].ravel(), minlength=k)
    classes = []
    for j, c in enumerate(cnames):
        classes.append({"class": c, "id": j, "labelled_pixels": int(lab_pix[j]), "confident_pixels": int(pred_pix[j]),
                        "removed": int(removed[:, j].sum()), "added": int(added[:, j].sum()),
                        "iou": None if t_union[j] == 0 else round(float(t_inter[j] / t_union[j]), 6),
                        "images_changed": int(((removed[:, j] + added[:, j]) > 0).sum())})
    return LabelIssues(scores, order, images, classes)


def _chunk_stats(labels: np.ndarray, argmax: np.ndarray, confident: np.ndarray, k: int, ignore_index: int):
    """Per-image counts of a few images: labelled and disagreeing pixels [n], removed / added per
    class [n, K], label-vs-argmax confusion [n, K, K], and confidently predicted pixels per class [K]."""
    n = len(labels)
    flat_l = labels.reshape(n, -1).astype(np.int64)
    flat_p = argmax.reshape(n, -1).astype(np.int64)
    rows = np.broadcast_to(np.arange(n)[:, None], flat_l.shape)
    valid = flat_l != ignore_index
    known = flat_p < k  # NOT_CONFIDENT (or any id beyond the classes) is no prediction
    conf = confident.reshape(n, -1) & known & valid
    wrong = conf & (flat_p != flat_l)
    removed = np.bincount(rows[wrong] * k + flat_l[wrong], minlength=n * k).reshape(n, k)
    added = np.bincount(rows[wrong] * k + flat_p[wrong], minlength=n * k).reshape(n, k)
    both = valid & known
    conf_mat = np.bincount((rows[both] * k + flat_l[both]) * k + flat_p[both], minlength=n * k * k).reshape(n, k, k)
    pred_pix = np.bincount(flat_p[conf], minlength=k)
    return valid.sum(1), wrong.sum(1), removed, added, conf_mat, pred_pix


# -- ranking quality (benchmarks and tests) ------------------------------------------------------------

def precision_at_k(order: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Share of the first ``k`` ranked images that are relevant (``relevant``: bool per image)."""
    return float(np.asarray(relevant)[np.asarray(order)[:k]].mean())


def average_precision(order: np.ndarray, relevant: np.ndarray) -> float:
    """Mean of precision@rank over the ranks of the relevant images (NaN when none is relevant)."""
    hits = np.asarray(relevant)[np.asarray(order)].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def order_by(score: np.ndarray, descending: bool = True) -> np.ndarray:
    """Image indices sorted by ``score`` (NaN last, ties by index)."""
    s = np.asarray(score, dtype=np.float64)
    key = np.where(np.isnan(s), -np.inf if descending else np.inf, s)
    return np.lexsort((np.arange(len(s)), -key if descending else key))
