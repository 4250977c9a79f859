"""``adele``: Adaptive Early-Learning Correction (Liu et al., CVPR 2022; METHODS.md section 2).

Per epoch (0-based ``e``; the paper's / code's 1-based epoch number is e + 1):

1. ``observe_train_batch``: the engine's un-augmented pass over the training set; we keep one uint8
   per pixel, the argmax where the prediction is confident (max foreground probability > tau_fg or
   background probability > tau_bg) and 255 elsewhere. That is all a correction needs, so a correction
   costs no forward pass beyond the engine's.
2. ``on_epoch_end``: append each class's training IoU (vs the current labels, or vs the original noisy
   labels: ``iou_reference``), then for every foreground class not yet triggered: learning start,
   bounded fit of f(t) = a (1 - exp(-b t^c)), trigger iff |f'(1) - f'(t_now)| / |f'(1)| > r (see
   ``_early_learning``). A triggered class stays triggered (VOC code: "update each class once").
3. Correction (the authors' ``merge_labels_with_skip``) at a class's trigger epoch and then every
   ``correct_every`` epochs.
4. ``loss``: CE at each scale (averaged) + lambda (1/S) sum_k KL(p_k || q), q = mean_k p_k.

Where the authors' code and the paper/sheet differ (default first): ``time_grid`` epochs | code
(np.linspace(0, n, n)); ``correct_schedule`` from_trigger | code; ``correct_classes`` triggered | due;
``code_ce_scaling`` off | on (CE on logits / S); ``iou_reference`` current (SegTHOR) | original (VOC).
Correction source ``prediction``: ``train_epoch`` (default, the authors' SegTHOR code) corrects from the
train-mode softmax at scale 1.0 that each un-augmented batch produced during the training pass (no
extra forward; refused with ``train.augment``, whose batches no longer align with the labels);
``eval_pass`` from the engine's eval-mode pass after the epoch. Measured on the synthetic default (main
job's trial, 3 seeds, ``benchmarks/compare_methods.py``): train_epoch / eval_pass best-val 66.2 ± 2.4 /
64.7 ± 1.0, last 64.4 ± 1.7 / 61.0 ± 3.9, label mIoU 68.4 ± 2.0 / 63.9 ± 2.5; train_epoch ahead on every
seed in best-val and label mIoU (paired Δ best-val +1.47, 95% interval [-1.98, +4.91]), so eval_pass,
no cheaper, is not the default.
Not reproduced: the SegTHOR code re-tests a triggered class at each correction period (here a trigger
is permanent, as in the VOC code), its ``logic_255`` option (off there), the VOC code's learnable scale
weights, and its CE mean over all pixels including void (here: over non-void pixels).

Every cell of the paper's ablation table (Table 2) is one config: ``correction`` on/off x {``scales:
[1.0]``, multiscale input (``consistency: false``), multiscale consistency (defaults)}; Table 1's
ablation is ``class_adaptive: false``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..typed import check_range, join
from ..errors import ConfigError
from ._early_learning import TriggerResult, learning_start, trigger_test
from .base import Method, MethodContext, TrainIoU

NOT_CONFIDENT = 255  # code of a pixel whose prediction is not confident (never a correction source)
MIXTURE_CLAMP = 1e-3  # the authors clamp q to [1e-3, 1 - 1e-3] before its log (JSD_loss.py)
CHUNK = 32  # images per correction step (bounds the temporary int64 copies)


# -- multiscale consistency ------------------------------------------------------------------
def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """Input size at ``scale``: round(h s) x round(w s), at least 1 px (the authors'
    F.interpolate(scale_factor=s) floors; rounding keeps every size within half a pixel of the
    configured scale)."""
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def model_multiple(model: torch.nn.Module, default: int = 32) -> int:
    """The multiple an encoder-decoder model needs its input sizes to be: the smp encoder's output
    stride, else ``default``."""
    stride = getattr(getattr(model, "encoder", None), "output_stride", None)
    return int(stride) if isinstance(stride, int) and stride > 0 else default


def forward_padded(model: torch.nn.Module, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``model(x)`` for any (H, W): pad bottom/right to a multiple of ``multiple`` (edge pixels
    replicated), run, crop the logits back to (H, W). No padding when the size already fits."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return model(x)
    return model(F.pad(x, (0, pw, 0, ph), mode="replicate"))[..., :h, :w]


def forward_at_scale(model: torch.nn.Module, images: torch.Tensor, scale: float,
                     multiple: int | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``images`` resized by ``scale`` (bilinear, align_corners=True as in the
    authors' ``eval_model_at_scale``), resized back to the input's (H, W). The scaled input is padded
    to the model's multiple and its logits cropped (:func:`forward_padded`), so the model sees the
    image at the configured scale (within half a pixel) at any input size. Scale 1.0: one plain call."""
    if scale == 1.0:
        return model(images)
    h, w = images.shape[-2:]
    x = F.interpolate(images, size=scaled_size(h, w, scale), mode="bilinear", align_corners=True)
    logits = forward_padded(model, x, multiple or model_multiple(model))
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True)


def multiscale_consistency(logits: Sequence[torch.Tensor], labels: torch.Tensor, rho: float,
                           ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1/S) sum_k KL(p_k || q), q = (1/S) sum_k p_k, averaged over all B*H*W pixels, with images
    masked out unless their confidence reaches ``rho``. Returns (scalar, per-image mask [B]).

    As the authors' ``calc_jsd_multiscale``: q is clamped to [1e-3, 1 - 1e-3] before the log; an
    image's confidence is the maximum of q over classes and over its non-void pixels
    (amax(q * (label != 255), dim=(C, H, W)) >= rho); the KL covers every pixel of a kept image
    (void too: the code's default Mask_label255_sign='no'); masked images count as 0 in the mean.
    q is not detached: the gradient flows through the mixture as in the code."""
    probs = [F.softmax(z.float(), dim=1) for z in logits]
    q = torch.stack(probs).mean(dim=0).clamp(MIXTURE_CLAMP, 1.0 - MIXTURE_CLAMP)
    valid = (labels != ignore_index).unsqueeze(1).to(q.dtype)
    with torch.no_grad():
        mask = ((q * valid).amax(dim=(1, 2, 3)) >= rho).to(q.dtype)
    log_q = q.log()
    kl = sum(F.kl_div(log_q, p, reduction="none").sum(dim=1) for p in probs) / len(probs)  # [B, H, W]
    return (kl * mask[:, None, None]).mean(), mask


# -- label correction ------------------------------------------------------------------------
def encode_confident(probs: torch.Tensor, tau_fg: float, tau_bg: float) -> torch.Tensor:
    """uint8 [B, H, W]: argmax where max_{k>=1} p_k > tau_fg or p_0 > tau_bg, else 255 (the authors'
    ``confident``; for tau < 0.5 the argmax may differ from the class that made the pixel confident,
    as in their code the label then becomes the argmax)."""
    confident = (probs[:, 1:].amax(dim=1) > tau_fg) | (probs[:, 0] > tau_bg)
    pred = probs.argmax(dim=1)
    return torch.where(confident, pred, torch.full_like(pred, NOT_CONFIDENT)).to(torch.uint8)


def correct_labels(labels: torch.Tensor, pred: torch.Tensor, classes: Sequence[int],
                   class_constraint: bool = True) -> torch.Tensor:
    """The authors' ``merge_labels_with_skip`` (logic_255 off) on uint8 [B, H, W] labels; ``pred`` from
    :func:`encode_confident`; ``classes``: the foreground classes being corrected. A pixel takes the
    prediction where all hold: the prediction is confident; the current label is background or in
    ``classes`` (void never changes); the prediction is background or in ``classes``; with the class
    constraint, the prediction is background or already present in the image's labels. Images whose
    labels hold none of ``classes`` are untouched. Returns new labels (the input is not modified)."""
    b = labels.shape[0]
    flat = labels.reshape(b, -1).long()
    p = pred.reshape(b, -1).long()
    allowed = torch.zeros(256, dtype=torch.bool, device=labels.device)
    allowed[0] = True
    allowed[list(classes)] = True
    present = torch.zeros(b, 256, dtype=torch.bool, device=labels.device).scatter_(1, flat, True)
    replace = (p != NOT_CONFIDENT) & allowed[flat] & allowed[p]
    if class_constraint:
        replace &= (p == 0) | present.gather(1, p)
    replace &= present[:, list(classes)].any(dim=1, keepdim=True)
    return torch.where(replace, p, flat).to(labels.dtype).reshape(labels.shape)


class Adele(Method):
    """ADELE: class-adaptive label correction triggered by the IoU curve, plus multiscale consistency."""

    @dataclass
    class Params:
        # -- trigger: METHODS.md adele steps 1-3 --
        r: float = 0.9  # relative-derivative threshold
        class_adaptive: bool = True  # false: one trigger for all classes from the mean foreground curve
        iou_reference: Literal["current", "original"] = "current"  # SegTHOR code / VOC code
        start_rule: Literal["jump", "floor"] = "jump"  # authors' SegTHOR rule / first IoU >= start_floor
        start_jump: float = 0.1  # "jump": first epoch-to-epoch IoU gain >= this starts the curve
        start_floor: float = 0.05  # "floor": the curve starts just before its first IoU >= this
        min_points: int = 3  # IoU values after the start (t >= 1) before the first test
        time_grid: Literal["epochs", "code"] = "epochs"  # t in epochs (paper) / linspace(0, n, n) (code)
        # -- correction: step 4 --
        correction: bool = True  # false: the "no label correction" rows of the ablation table
        tau_fg: float = 0.7  # SegTHOR code 0.7, VOC code 0.8
        tau_bg: float = 0.7
        correct_every: int = 10  # then every n epochs (VOC code: 1); 0 = only at the trigger epoch
        correct_schedule: Literal["from_trigger", "code"] = "from_trigger"  # T + k n / (e + 1) % n == 0
        correct_classes: Literal["triggered", "due"] = "triggered"  # sheet / SegTHOR code, see _classes_to_correct
        class_constraint: bool = True
        reset_before_correct: bool = False  # VOC code's Reinit_dict
        prediction: Literal["train_epoch", "eval_pass"] = "train_epoch"  # correction source (module doc)
        # -- multiscale consistency: step 6 --
        scales: tuple[float, ...] = (0.7, 1.0, 1.5)
        consistency: bool = True  # false with several scales = multiscale input augmentation
        lambda_: float = 1.0  # YAML key "lambda_" ("lambda" is a Python keyword)
        rho: float = 0.8
        size_multiple: int | None = None  # scaled inputs padded to this multiple; None: the encoder's stride
        code_ce_scaling: bool = False  # the code's CE on logits * softmax(w)_k = logits / S

        def validate(self, path: str) -> None:
            for key in ("r", "tau_fg", "tau_bg", "rho", "start_floor"):
                check_range(join(path, key), getattr(self, key), 0, 1)
            check_range(join(path, "start_jump"), self.start_jump, 0, 1, lo_open=True)
            check_range(join(path, "min_points"), self.min_points, 1)
            check_range(join(path, "correct_every"), self.correct_every, 0)
            check_range(join(path, "lambda_"), self.lambda_, 0)
            check_range(join(path, "size_multiple"), self.size_multiple, 1)
            if not self.scales:
                raise ConfigError(f"{join(path, 'scales')}: got an empty list; expected at least one scale")
            for i, s in enumerate(self.scales):
                check_range(join(join(path, "scales"), i), s, 0, lo_open=True)

        def check_trial(self, cfg: Any, path: str) -> None:
            """Checks against the whole trial config (called by parse_trial)."""
            if self.prediction == "train_epoch" and self.correction and cfg.train.augment:
                raise ConfigError(f"{join(path, 'prediction')}: train_epoch corrects from the training pass, "
                                  "which train.augment makes misaligned with the labels; use eval_pass or "
                                  "train.augment: false")

    def __init__(self, params: Params, ctx: MethodContext):
        super().__init__(params, ctx)
        k = ctx.num_classes
        self.history: list[list[float]] = []  # [epoch][class]: the reference IoU (NaN kept)
        self.trigger: list[int] = [-1] * k  # 0-based epoch a foreground class was triggered, -1 = not yet
        self.curves: dict[str, dict[str, Any]] = {}  # per tested curve ("1".., or "mean"): last test
        self.corrected_to: list[int] = [0] * k  # pixels relabelled to class c at the last epoch
        self.corrected_from: list[int] = [0] * k  # pixels whose label c was replaced at the last epoch
        self.original: torch.Tensor | None = None  # initial noisy labels, kept for reset_before_correct
        self.last_epoch = -1
        self._pred: torch.Tensor | None = None  # transient: encode_confident of this epoch's pass
        self._pred_epoch = -1
        self._batch: torch.Tensor | None = None  # dataset indices of the running (un-augmented) batch

    # -- training -------------------------------------------------------------------------------
    def loss(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
             epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """mean_k CE(z_k, y) + lambda (1/S) sum_k KL(p_k || q); ``scales: [1.0]`` = one plain CE.
        Terms are detached device tensors (the engine reads them once per epoch)."""
        p, ign = self.params, self.ctx.ignore_index
        logits = [forward_at_scale(model, images, s, p.size_multiple) for s in p.scales]
        # the code multiplies scale k's logits by softmax(w)_k = 1/S (w = ones) before its CE
        temp = 1.0 / len(logits) if p.code_ce_scaling else 1.0
        ce = sum(F.cross_entropy(z * temp, labels, ignore_index=ign) for z in logits) / len(logits)
        if p.correction and p.prediction == "train_epoch" and self._batch is not None:
            with torch.no_grad():  # the train-mode softmax at scale 1.0 (else the mean over scales)
                at_one = [z for s, z in zip(p.scales, logits) if s == 1.0]
                probs = (F.softmax(at_one[0].detach().float(), dim=1) if at_one else
                         torch.stack([F.softmax(z.detach().float(), dim=1) for z in logits]).mean(0))
                self._store(epoch, self._batch, probs)
        if not (p.consistency and len(logits) > 1 and p.lambda_ > 0):
            return ce, {"ce": ce.detach()}
        kl, mask = multiscale_consistency(logits, labels, p.rho, ign)
        return ce + p.lambda_ * kl, {"ce": ce.detach(), "consistency": kl.detach(),
                                     "consistency_images": mask.mean()}

    def begin_batch(self, epoch: int, indices: torch.Tensor, augmented: bool) -> None:
        self._batch = None if augmented else indices

    # -- once per epoch -----------------------------------------------------------------------
    def observe_train_batch(self, epoch: int, indices: torch.Tensor, probs: torch.Tensor) -> None:
        if self.params.correction and self.params.prediction == "eval_pass":
            self._store(epoch, indices, probs)

    def _store(self, epoch: int, indices: torch.Tensor, probs: torch.Tensor) -> None:
        """Keep the confident argmax of ``probs`` for images ``indices`` (uint8, 255 = not confident),
        on the device of ``probs`` (no host sync per batch)."""
        if self._pred is None or self._pred.device != probs.device:
            n, (h, w) = self.ctx.num_train, probs.shape[-2:]
            self._pred = torch.full((n, h, w), NOT_CONFIDENT, dtype=torch.uint8, device=probs.device)
        if epoch != self._pred_epoch:
            self._pred.fill_(NOT_CONFIDENT)  # an image missed this epoch must not reuse stale predictions
            self._pred_epoch = epoch
        codes = encode_confident(probs.detach(), self.params.tau_fg, self.params.tau_bg)
        self._pred[indices.to(self._pred.device, torch.long)] = codes

    def on_epoch_end(self, epoch: int, labels: torch.Tensor, train_iou: TrainIoU) -> None:
        p = self.params
        if p.reset_before_correct and self.original is None:
            self.original = labels.detach().clone().cpu()
        if epoch != len(self.history):
            # t is the index in the history: one value per epoch, none missing
            raise RuntimeError(f"adele: on_epoch_end(epoch={epoch}) after {len(self.history)} epochs of "
                               "IoU history (method state not restored, or an epoch skipped)")
        ref = train_iou.current if p.iou_reference == "current" else train_iou.noisy
        self.history.append([float(v) for v in ref])
        self.last_epoch = epoch
        self._update_triggers(epoch)
        self.corrected_to = [0] * self.ctx.num_classes
        self.corrected_from = [0] * self.ctx.num_classes
        classes = self._classes_to_correct(epoch)
        if p.correction and classes:
            if self._pred is None or self._pred_epoch != epoch or self._pred.shape != labels.shape:
                raise RuntimeError(f"adele: correction due at epoch {epoch} but no predictions of shape "
                                   f"{tuple(labels.shape)} were observed this epoch (observe_train_batch)")
            self._correct(labels, classes)

    # -- trigger --------------------------------------------------------------------------------
    def _test(self, y: np.ndarray, start: int | None) -> TriggerResult:
        p = self.params
        return trigger_test(y, start, p.r, self.ctx.epochs, min_points=p.min_points, grid=p.time_grid)

    def _start(self, y: np.ndarray) -> int | None:
        p = self.params
        return learning_start(y, p.start_rule, p.start_jump, p.start_floor)

    def _update_triggers(self, epoch: int) -> None:
        """Test every foreground class not yet triggered (class_adaptive), or the mean foreground
        curve for all of them at once. The mean curve starts when its first class starts: a jump of
        0.1 in the mean of K-1 classes would need most classes to jump in the same epoch."""
        y = np.nan_to_num(np.asarray(self.history, dtype=np.float64), nan=0.0)  # [T, K]
        fg = [c for c in range(1, self.ctx.num_classes) if self.trigger[c] < 0]
        if not fg:
            return
        if self.params.class_adaptive:
            for c in fg:
                res = self._test(y[:, c], self._start(y[:, c]))
                self._record(str(c), res, [c], epoch)
            return
        starts = [s for s in (self._start(y[:, c]) for c in range(1, y.shape[1])) if s is not None]
        res = self._test(y[:, 1:].mean(axis=1), min(starts) if starts else None)
        self._record("mean", res, fg, epoch)

    def _record(self, key: str, res: TriggerResult, classes: list[int], epoch: int) -> None:
        self.curves[key] = {
            "start": -1 if res.start is None else int(res.start),
            "fit": None if res.fit is None else [float(v) for v in res.fit],
            "update_t": -1 if res.update_t is None else int(res.update_t),
            "rc": None if not np.isfinite(res.rc_now) else float(res.rc_now),
        }
        if res.triggered:
            for c in classes:
                self.trigger[c] = epoch

    # -- correction -----------------------------------------------------------------------------
    def _due(self, c: int, epoch: int) -> bool:
        """Class c is corrected at its trigger epoch T and then every ``correct_every`` epochs:
        ``from_trigger`` (the sheet): epochs T + k n; ``code`` (SegTHOR code): the 1-based epoch
        numbers divisible by n, i.e. (e + 1) % n == 0."""
        t, n = self.trigger[c], self.params.correct_every
        if t < 0 or epoch < t:
            return False
        if epoch == t:
            return True
        if n <= 0:
            return False
        if self.params.correct_schedule == "code":
            return (epoch + 1) % n == 0
        return (epoch - t) % n == 0

    def _classes_to_correct(self, epoch: int) -> list[int]:
        """At an epoch where some class is due: all triggered classes (``triggered``, the sheet's
        "started class") or only the due ones (``due``: the SegTHOR code passes merge_labels_with_skip
        only the classes due this epoch). Equal when correct_every = 1 (VOC code)."""
        due = [c for c in range(1, self.ctx.num_classes) if self._due(c, epoch)]
        if not due or self.params.correct_classes == "due":
            return due
        return [c for c in range(1, self.ctx.num_classes) if self.trigger[c] >= 0]

    def _correct(self, labels: torch.Tensor, classes: list[int]) -> None:
        """Rewrite ``labels`` in place, chunk by chunk; count changes per class. With
        ``reset_before_correct`` every image first returns to its original noisy labels (VOC code:
        init_seg_dict before each update), so corrections do not accumulate."""
        to = torch.zeros(256, dtype=torch.long)
        frm = torch.zeros(256, dtype=torch.long)
        for i in range(0, labels.shape[0], CHUNK):
            old = labels[i:i + CHUNK].clone()
            base = self.original[i:i + CHUNK].to(labels.device) if self.params.reset_before_correct else old
            pred = self._pred[i:i + CHUNK].to(labels.device)
            new = correct_labels(base, pred, classes, self.params.class_constraint)
            changed = new != old
            to += torch.bincount(new[changed].long().cpu(), minlength=256)
            frm += torch.bincount(old[changed].long().cpu(), minlength=256)
            labels[i:i + CHUNK] = new
        k = self.ctx.num_classes
        self.corrected_to, self.corrected_from = to[:k].tolist(), frm[:k].tolist()

    # -- logging / checkpointing ----------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        """``trigger/<c>`` (0-based epoch, -1), per tested curve ``<c>`` or ``mean``: ``start/`` (the
        learning-start epoch = t 0, -1), ``fit/`` ([a, b, c] of the last fit, paper letters, or None),
        ``update_t/`` (epochs after the start at which rc > r, -1), ``rc/`` (rc at the current epoch);
        ``corrected/<c>`` (pixels relabelled to c this epoch), ``corrected_from/<c>``,
        ``corrected_total``, ``triggered`` (number of triggered classes)."""
        k = self.ctx.num_classes
        out: dict[str, Any] = {f"trigger/{c}": self.trigger[c] for c in range(1, k)}
        for key, cur in self.curves.items():
            for name, value in cur.items():
                out[f"{name}/{key}"] = value
        out.update({f"corrected/{c}": self.corrected_to[c] for c in range(k)})
        out.update({f"corrected_from/{c}": self.corrected_from[c] for c in range(k)})
        out["corrected_total"] = int(sum(self.corrected_to))
        out["triggered"] = sum(t >= 0 for t in self.trigger)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything but the per-epoch prediction buffer (rebuilt by the next epoch's pass)."""
        hist = torch.tensor(self.history, dtype=torch.float64).reshape(-1, self.ctx.num_classes)
        return {"history": hist, "trigger": list(self.trigger),
                "curves": {key: dict(cur) for key, cur in self.curves.items()},
                "corrected_to": list(self.corrected_to), "corrected_from": list(self.corrected_from),
                "original": None if self.original is None else self.original.clone(),
                "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [[float(v) for v in row] for row in state["history"].tolist()]
        self.trigger = [int(t) for t in state["trigger"]]
        self.curves = {key: dict(cur) for key, cur in state["curves"].items()}
        self.corrected_to = [int(v) for v in state["corrected_to"]]
        self.corrected_from = [int(v) for v in state["corrected_from"]]
        self.original = state["original"]
        self.last_epoch = int(state["last_epoch"])
