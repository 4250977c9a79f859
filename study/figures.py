"""The report's figures (matplotlib, Agg). Each function takes plain rows read from the experiment's
files and returns the PNG names it wrote into ``fig_dir``.

Written by hand rather than with ``optuna.visualization.matplotlib``: Optuna's plots see only the
Optuna storage, while these need Ray's per-epoch results (per-class IoU, ADELE's fitted curves and
trigger epochs, replicates and baselines by seed), class names and integer epoch axes.
"""
from __future__ import annotations

import math
from pathlib import Path

from .results import TrialRecord
from .stats import summarize

SHOWN_PARAMS = 4  # searched parameters named in a per-trial legend entry


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(plt, fig, fig_dir: Path, name: str, names: list[str]) -> None:
    fig.tight_layout()
    fig.savefig(fig_dir / name, dpi=90, bbox_inches="tight")
    plt.close(fig)
    names.append(name)


def _short(params: dict) -> str:
    items = list(params.items())[:SHOWN_PARAMS]
    return ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
                     for k, v in items)


def best_trial(fig_dir: Path, slug: str, best: TrialRecord) -> list[str]:
    """Per-class training IoU of the best search trial (class names in the legend), with ADELE's
    fitted curves and trigger epochs where the method logged them; its IoU_el / IoU_m."""
    plt, names = _plt(), []
    hist = best.history
    if not hist:
        return names
    epochs = [h["epoch"] for h in hist]
    classes = [k.split("/", 1)[1] for k in hist[-1] if k.startswith("train_iou/")]
    if not classes:
        return names
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, cname in enumerate(classes):
        line, = ax.plot(epochs, [h.get(f"train_iou/{cname}") for h in hist], marker=".", label=cname)
        _adele_overlay(ax, hist[-1], i, line.get_color())
    ax.set(xlabel="epoch", ylabel="training IoU (vs the labels trained on)",
           title=f"{slug}: per-class training IoU of the best trial\n(dashed: ADELE's fit, dotted: its trigger)")
    ax.legend(fontsize=7, title="class", title_fontsize=7)
    _integer_epochs(ax)
    _save(plt, fig, fig_dir, f"train_iou_{slug}.png", names)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("iou_el", "IoU_el (vs clean label)"), ("iou_m", "IoU_m (vs noisy label)")):
        ax.plot(epochs, [h.get(key) for h in hist], marker=".", label=label)
    ax.set(xlabel="epoch", ylabel="IoU on wrongly labelled pixels", title=f"{slug}: early learning vs memorisation (best trial)")
    ax.legend(fontsize=8)
    _integer_epochs(ax)
    _save(plt, fig, fig_dir, f"iou_el_m_{slug}.png", names)
    return names


def _adele_overlay(ax, last: dict, index: int, color: str) -> None:
    """ADELE's fitted f(t) = a (1 - exp(-b t^c)) from its learning start, and its trigger epoch
    (diagnostics use 0-based epochs; the plot's x axis counts completed epochs)."""
    fit = last.get(f"method/fit/{index}")
    start = last.get(f"method/start/{index}")
    if isinstance(fit, list) and len(fit) == 3 and None not in fit and isinstance(start, (int, float)) and start >= 0:
        a, b, c = fit
        n = int(last.get("epoch", 0))
        ts = [i / 10 for i in range(0, 10 * max(1, n - 1 - int(start)) + 1)]
        ax.plot([start + 1 + t for t in ts], [a * (1 - math.exp(-b * t ** c)) for t in ts], "--", color=color, lw=1)
    trigger = last.get(f"method/trigger/{index}")
    if isinstance(trigger, (int, float)) and trigger >= 0:
        ax.axvline(trigger + 1, color=color, ls=":", lw=1)


def metric_per_trial(fig_dir: Path, slug: str, search: list[TrialRecord], numbers: dict, metric: str) -> list[str]:
    """The metric per epoch of every search trial; legend: Optuna trial number, state, parameters."""
    plt, names = _plt(), []
    if not search:
        return names
    fig, ax = plt.subplots(figsize=(8, 4.5))
    order = sorted(search, key=lambda t: numbers.get(t.trial_id, {}).get("number", math.inf))
    for t in order:
        hist = t.history
        st = numbers.get(t.trial_id, {})
        label = f"#{st.get('number', '?')} {st.get('state', '?').lower()}: {_short(t.params)}"
        ax.plot([h.get("epoch") for h in hist], [h.get(metric) for h in hist], marker=".", alpha=0.8, label=label)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{slug}: {metric} per search trial")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _integer_epochs(ax)
    _save(plt, fig, fig_dir, f"metric_per_trial_{slug}.png", names)
    return names


def importances(fig_dir: Path, slug: str, rows: list[dict], n_complete: int) -> list[str]:
    plt, names = _plt(), []
    if not rows:
        return names
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.4 * len(rows)))
    ax.barh([r["parameter"] for r in rows][::-1], [r["importance"] for r in rows][::-1])
    ax.set(xlabel="importance (fANOVA)", title=f"{slug}: Optuna parameter importances (n = {n_complete} complete trials)")
    _save(plt, fig, fig_dir, f"importance_{slug}.png", names)
    return names


def versus_baselines(fig_dir: Path, slug: str, by_label: dict[str, dict], labels: dict[str, str],
                     keys=("best_val", "last")) -> list[str]:
    """Each configuration's test mIoU per seed (points; a line joins one seed's configurations:
    the pairs the differences are taken over) with the mean and its 95% interval."""
    plt, names = _plt(), []
    if not by_label:
        return names
    order = list(by_label)
    seeds = sorted({s for per in by_label.values() for s in per})
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 + 1.4 * len(order) * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for j, seed in enumerate(seeds):
            ys = [100 * by_label[lab][seed][key] if seed in by_label[lab] and by_label[lab][seed].get(key) is not None
                  else math.nan for lab in order]
            ax.plot(range(len(order)), ys, "o-", color=f"C{j % 10}", alpha=0.6, lw=1, label=f"seed {seed}")
        for i, lab in enumerate(order):
            s = summarize([100 * r[key] for r in by_label[lab].values() if r.get(key) is not None])
            if s.n:
                err = [[s.mean - s.lo], [s.hi - s.mean]] if s.n > 1 else None
                ax.errorbar([i + 0.15], [s.mean], yerr=err, fmt="D", color="black", capsize=4, ms=5)
        ax.set_xticks(range(len(order)), [labels.get(lab, lab) for lab in order], rotation=15, fontsize=8)
        ax.set(ylabel=f"test mIoU % ({key})", title=f"{slug}: {key}")
    axes[0][0].legend(fontsize=7)
    _save(plt, fig, fig_dir, f"versus_{slug}.png", names)
    return names


def replicate_curves(fig_dir: Path, slug: str, histories: dict[str, list[list[dict]]], labels: dict[str, str]) -> list[str]:
    """Per epoch, mean over seeds for each configuration: validation mIoU, label mIoU (labels
    trained on vs clean), IoU_el and IoU_m: where a method helps or hurts, and when."""
    plt, names = _plt(), []
    if not histories:
        return names
    keys = (("val_miou", "val mIoU"), ("label_miou", "label mIoU (trained-on vs clean)"),
            ("iou_el", "IoU_el"), ("iou_m", "IoU_m"))
    fig, axes = plt.subplots(1, len(keys), figsize=(16, 3.6))
    for j, (lab, runs) in enumerate(histories.items()):
        for ax, (key, title) in zip(axes, keys):
            by_epoch: dict[int, list[float]] = {}
            for hist in runs:
                for h in hist:
                    if h.get(key) is not None:
                        by_epoch.setdefault(int(h["epoch"]), []).append(float(h[key]))
            xs = sorted(by_epoch)
            ax.plot(xs, [sum(by_epoch[x]) / len(by_epoch[x]) for x in xs], color=f"C{j % 10}",
                    label=f"{labels.get(lab, lab)} (n={len(runs)})")
            ax.set(xlabel="epoch", title=title)
            _integer_epochs(ax)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{slug}: replicates, mean over seeds", fontsize=9)
    _save(plt, fig, fig_dir, f"curves_{slug}.png", names)
    return names
