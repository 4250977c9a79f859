"""Rank training images by how likely their annotation is wrong: pure functions of (labels, the
model's per-pixel predictions, ignore_index), no files, no model.

Per image (every score skips void label pixels):

- ``disagreement``: the share of labelled pixels where the model is confident (max probability
  >= tau) and its prediction differs from the label (largest first);
- ``removed/<class>`` / ``added/<class>``: pixels the confident prediction takes from / gives to
  each class (labelled c but confidently predicted otherwise / the reverse);
- ``iou``: mean IoU of label vs the model's argmax over the classes present in either;
- with probabilities, cleanlab's segmentation scores (:func:`cleanlab_issues`, computed by the
  library itself): ``cleanlab_softmin`` (``rank.get_label_quality_scores(method="softmin")``: p(label)
  per pixel pooled by softmin, T = 0.1), ``cleanlab_issue_pixels`` (pixels that
  ``filter.find_label_issues`` flags by confident learning) and ``cleanlab_num_pixel_issues``
  (``method="num_pixel_issues"``: 1 - the flagged share). Low scores = suspect.

The ranking (``rank_by``, one of RANKINGS) orders the images by one of these scores; ties break by
lower IoU, then by image index, so the order is deterministic.

Per class (over the whole set): labelled / confidently predicted pixels, removed, added, the
label-vs-argmax IoU and the number of images whose class would change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOT_CONFIDENT = 255  # code of a pixel whose prediction is unknown / below tau in a confident map
SOFTMIN_TEMPERATURE = 0.1  # cleanlab's default for segmentation
CHUNK = 64  # images per counting step (bounds the int64 temporaries)
# ranking name -> (score column, largest first?)
RANKINGS = {"disagreement": ("disagreement", True), "cleanlab_issues": ("cleanlab_num_pixel_issues", False),
            "cleanlab_softmin": ("cleanlab_softmin", False), "iou": ("iou", False)}


@dataclass(frozen=True)
class Predictions:
    """What the ranking needs of a model's output, per pixel: ``argmax`` uint8 [N, H, W]
    (NOT_CONFIDENT where unknown), ``confident`` bool [N, H, W], and ``probs`` float32 [N, K, H, W]
    (the softmax, cleanlab's ``pred_probs`` layout) or None when only hard predictions are known."""

    argmax: np.ndarray
    confident: np.ndarray
    probs: np.ndarray | None = None

    @classmethod
    def from_probs(cls, probs, tau: float) -> "Predictions":
        """From softmax probabilities [N, K, H, W] (numpy or torch); a pixel is confident when its
        largest probability is at least ``tau``."""
        p = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
        if p.ndim != 4:
            raise ValueError(f"probabilities have shape {tuple(p.shape)}; expected [N, K, H, W]")
        p = p.astype(np.float32, copy=False)
        return cls(p.argmax(axis=1).astype(np.uint8), p.max(axis=1) >= tau, p)

    @classmethod
    def from_confident(cls, confident_pred: np.ndarray) -> "Predictions":
        """From a confident-prediction map: class id where confident, NOT_CONFIDENT elsewhere."""
        pred = np.asarray(confident_pred).astype(np.uint8)
        return cls(pred, pred != NOT_CONFIDENT, None)

    @staticmethod
    def concat(parts: list["Predictions"]) -> "Predictions":
        probs = None if any(p.probs is None for p in parts) else np.concatenate([p.probs for p in parts])
        return Predictions(np.concatenate([p.argmax for p in parts]), np.concatenate([p.confident for p in parts]),
                           probs)


@dataclass
class LabelIssues:
    """``scores``: name -> per-image array in image order; ``order``: image indices, most suspect
    first; ``images`` / ``classes``: rows for the CSV files (images in rank order); ``flags``:
    cleanlab's flagged pixels bool [N, H, W] (None without probabilities)."""

    scores: dict[str, np.ndarray]
    order: np.ndarray
    images: list[dict]
    classes: list[dict]
    flags: np.ndarray | None = None


# -- cleanlab.segmentation, with void pixels masked ---------------------------------------------------

@dataclass
class CleanlabIssues:
    """cleanlab's view of a labelled set: ``flags`` bool [N, H, W] (confident learning's label
    issues; never on void), ``softmin`` and ``num_pixel_issues`` per image (low = suspect; NaN for
    an image without labelled pixels), ``self_confidence`` float32 [N, H, W] = p(label) (NaN on void)."""

    flags: np.ndarray
    softmin: np.ndarray
    num_pixel_issues: np.ndarray
    self_confidence: np.ndarray


def _check_probs(labels: np.ndarray, probs: np.ndarray, ignore_index: int) -> np.ndarray:
    if probs.ndim != 4 or labels.ndim != 3 or probs.shape[:1] + probs.shape[2:] != labels.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and probabilities {tuple(probs.shape)}: expected [N, H, W] "
                         "and [N, K, H, W] (cleanlab's pred_probs layout) with the same N, H, W")
    valid = labels != ignore_index
    if (labels[valid] >= probs.shape[1]).any():
        raise ValueError(f"labels hold class ids >= {probs.shape[1]} (the number of classes) other than void "
                         f"{ignore_index}")
    return valid


def cleanlab_issues(labels: np.ndarray, probs: np.ndarray, ignore_index: int = 255, *, n_jobs: int = 1,
                    temperature: float = SOFTMIN_TEMPERATURE) -> CleanlabIssues:
    """Run ``cleanlab.segmentation`` on ``labels`` uint8 [N, H, W] and ``probs`` [N, K, H, W].

    cleanlab has no ignore index, so void pixels never reach it: the non-void pixels of all images
    are packed into one (1, K, 1, M) pseudo-image for ``filter.find_label_issues`` (confident
    learning treats pixels independently when not downsampled, so this is the same computation on
    the labelled pixels only; its per-class thresholds are not skewed by void), with a
    ``batch_size`` covering that whole array (cleanlab's default, 10,000 probabilities, is smaller
    than one 64x64 image of 5 classes and would stream it image by image) and ``n_jobs`` processes
    (default 1: no process pool beside Ray's workers or torch's threads). ``softmin`` calls
    ``rank.get_label_quality_scores`` per image on its labelled pixels; ``num_pixel_issues`` is that
    function's formula (1 - mean of the flags) over the labelled pixels of each image. Memory: about
    three copies of the labelled pixels' probabilities."""
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores

    labels = np.asarray(labels)
    probs = np.asarray(probs)
    valid = _check_probs(labels, probs, ignore_index)
    if n_jobs < 1:
        raise ValueError(f"n_jobs: got {n_jobs}; allowed: 1 or more")
    n, k = probs.shape[:2]
    where = np.nonzero(valid)  # (image, row, column) of every labelled pixel, image-major
    m = len(where[0])
    flags = np.zeros(labels.shape, bool)
    if m:
        packed_probs = probs[where[0], :, where[1], where[2]].T[None, :, None, :]  # (1, K, 1, M)
        packed_labels = labels[where].astype(np.int64)[None, None, :]
        packed = find_label_issues(packed_labels, np.ascontiguousarray(packed_probs), batch_size=k * m,
                                   n_jobs=n_jobs, verbose=False)
        flags[where] = packed[0, 0]
    own = np.take_along_axis(probs, np.where(valid, labels, 0).astype(np.intp)[:, None], axis=1)[:, 0]
    self_conf = np.where(valid, own, np.nan).astype(np.float32)
    softmin = np.full(n, np.nan)
    for i in range(n):
        v = valid[i]
        if v.any():
            img_probs = probs[i][:, v][None, :, None, :]  # (1, K, 1, M_i)
            img_labels = labels[i][v].astype(np.int64)[None, None, :]
            softmin[i] = get_label_quality_scores(img_labels, np.ascontiguousarray(img_probs), method="softmin",
                                                  temperature=temperature, verbose=False)[0][0]
    counts = valid.reshape(n, -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        num_pixel_issues = np.where(counts > 0, 1 - flags.reshape(n, -1).sum(1) / np.maximum(counts, 1), np.nan)
    return CleanlabIssues(flags, softmin, num_pixel_issues, self_conf)


def flagged_labels(labels: np.ndarray, flags: np.ndarray, argmax: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """The labels with every flagged, non-void pixel replaced by the model's argmax (a new array)."""
    labels = np.asarray(labels)
    _check_shapes(labels, flags.shape)
    take = np.asarray(flags, bool) & (labels != ignore_index) & (argmax != NOT_CONFIDENT)
    return np.where(take, argmax, labels).astype(labels.dtype)


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
                      names: list[str] | None = None, class_names: list[str] | None = None, *,
                      rank_by: str = "disagreement", n_jobs: int = 1,
                      files: list[str] | None = None) -> LabelIssues:
    """Score and rank every image of ``labels`` uint8 [N, H, W] against ``predictions``.
    ``names``: image names for the rows (default: the index); ``files``: the images' source file
    names (a ``file`` column); ``class_names``: column suffixes; ``rank_by``: one of RANKINGS (the
    cleanlab ones need probabilities); ``n_jobs``: cleanlab's processes."""
    labels = np.asarray(labels)
    _check_shapes(labels, predictions.argmax.shape)
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by: got {rank_by!r}; allowed: {', '.join(RANKINGS)}")
    if rank_by.startswith("cleanlab") and predictions.probs is None:
        raise ValueError(f"rank_by {rank_by!r} needs the model's probabilities; only hard predictions were given")
    k = int(num_classes)
    bad = (labels >= k) & (labels != ignore_index)
    if bad.any():
        raise ValueError(f"labels hold value {int(labels[bad][0])}: not a class id below {k} nor void {ignore_index}")
    cnames = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(cnames) != k:
        raise ValueError(f"{len(cnames)} class names for {k} classes")
    if predictions.probs is not None and predictions.probs.shape[1] != k:
        raise ValueError(f"probabilities of {predictions.probs.shape[1]} classes for {k} classes")
    n = len(labels)
    names = list(names) if names is not None else [str(i) for i in range(n)]
    if len(names) != n or (files is not None and len(files) != n):
        raise ValueError(f"{len(names)} names / {None if files is None else len(files)} files for {n} images")

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
    flags = None
    if predictions.probs is not None:
        cl = cleanlab_issues(labels, predictions.probs, ignore_index, n_jobs=n_jobs)
        flags = cl.flags
        scores["cleanlab_softmin"] = cl.softmin
        scores["cleanlab_num_pixel_issues"] = cl.num_pixel_issues
        scores["cleanlab_issue_pixels"] = cl.flags.reshape(n, -1).sum(1)

    column, descending = RANKINGS[rank_by]
    primary = scores[column].astype(np.float64)
    primary = np.where(np.isnan(primary), -np.inf if descending else np.inf, primary)
    iou_key = np.where(np.isnan(iou), np.inf, iou)
    order = np.lexsort((np.arange(n), iou_key, -primary if descending else primary))  # last key is primary

    def num(v):
        return None if np.isnan(v) else round(float(v), 6)

    images = []
    for rank, i in enumerate(order, 1):
        row = {"rank": rank, "index": int(i), "name": names[i]}
        if files is not None:
            row["file"] = files[i]
        row.update({"disagreement": round(float(disagreement[i]), 6), "disagree_pixels": int(disagree[i]),
                    "labelled_pixels": int(labelled[i]), "iou": num(iou[i])})
        if flags is not None:
            row["cleanlab_num_pixel_issues"] = num(scores["cleanlab_num_pixel_issues"][i])
            row["cleanlab_issue_pixels"] = int(scores["cleanlab_issue_pixels"][i])
            row["cleanlab_softmin"] = num(scores["cleanlab_softmin"][i])
        row.update({f"removed/{c}": int(removed[i, j]) for j, c in enumerate(cnames)})
        row.update({f"added/{c}": int(added[i, j]) for j, c in enumerate(cnames)})
        images.append(row)

    total = conf_mat.sum(0)
    t_inter, t_union = np.diag(total), total.sum(1) + total.sum(0) - np.diag(total)
    lab_pix = np.bincount(labels[labels != ignore_index].ravel(), minlength=k)
    flagged_per_class = None if flags is None else np.bincount(labels[flags].ravel(), minlength=k)
    classes = []
    for j, c in enumerate(cnames):
        classes.append({"class": c, "id": j, "labelled_pixels": int(lab_pix[j]), "confident_pixels": int(pred_pix[j]),
                        "removed": int(removed[:, j].sum()), "added": int(added[:, j].sum()),
                        "iou": None if t_union[j] == 0 else round(float(t_inter[j] / t_union[j]), 6),
                        "images_changed": int(((removed[:, j] + added[:, j]) > 0).sum())})
        if flags is not None:
            classes[-1]["cleanlab_flagged"] = int(flagged_per_class[j])
    return LabelIssues(scores, order, images, classes, flags)


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
