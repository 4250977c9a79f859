"""Tables, figures and verdicts of benchmarks/reproduce.py, read from the paper studies' folders.

Every number comes from the replicates' own results (Ray's ``result.json`` per trial, or the single-
trial CLI's metrics converted to it): test mIoU at the best-validation epoch (``best_val``), the best
test mIoU over epochs (``max_test``, shown only beside the papers' numbers, never used to choose) and
at the last epoch (``last``). A claim "A beats B" is judged on the paired per-seed Δ best-val:
reproduced when its 95% interval lies above 0, partly when the mean is above 0 but the interval holds
0, not reproduced otherwise; a claim over several settings is reproduced when it is in every one,
partly when it is somewhere or has the right direction everywhere, not reproduced otherwise.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from study.results import read_trials
from study.spec import condition_slug
from study.stats import paired, summarize, verdict

KEYS = ("best_val", "max_test", "last")
# the papers' numbers (mIoU / AP / F1 in %), from ../shared/METHODS.md and ../shared/papers
PAPER = {
    "adele_table1": {"ce": (62.6, 63.3, 59.1), "adele_global": (40.7, 40.7, 40.5), "tuned": (71.1, 71.2, 70.8)},
    "adele_table2": {("off", "single"): 58.8, ("off", "ms_input"): 60.7, ("off", "ms_consistency"): 62.5,
                     ("on", "single"): 65.2, ("on", "ms_input"): 69.8, ("on", "ms_consistency"): 72.2},
    # LNCIS Table 1 (Pascal VOC, mask mAP): symmetric 20/40/60, asymmetric 20/40
    "lncis": {"ce": {"sym 0.2": 34.2, "sym 0.4": 31.5, "sym 0.6": 27.1, "asym 0.2": 36.8, "asym 0.4": 34.5},
              "gce": {"sym 0.2": 35.3, "sym 0.4": 32.9, "sym 0.6": 26.1, "asym 0.2": 36.0, "asym 0.4": 32.3},
              "sce": {"sym 0.2": 34.6, "sym 0.4": 32.1, "sym 0.6": 27.9, "asym 0.2": 37.5, "asym 0.4": 34.9},
              "tuned": {"sym 0.2": 38.5, "sym 0.4": 38.1, "sym 0.6": 33.8, "asym 0.2": 37.8, "asym 0.4": 35.1}},
    # the PU draft (CIFAR, 50% of the positives annotated, F1)
    "pu": {"ce": 44.0, "weighted": 76.0, "tuned": 78.0},
}
TABLE2 = {("off", "single"): "ce", ("off", "ms_input"): "nocorr_ms_input",
          ("off", "ms_consistency"): "nocorr_ms_consistency", ("on", "single"): "corr_single",
          ("on", "ms_input"): "corr_ms_input", ("on", "ms_consistency"): "tuned"}


# -- reading -----------------------------------------------------------------------------------------

def replicates(exp_dir: Path, slug: str) -> dict[str, dict[Any, dict]]:
    """label -> seed -> {"last": last result, "history": [...]} of one condition's finished replicates."""
    out: dict[str, dict[Any, dict]] = {}
    for t in read_trials(exp_dir / f"{slug}-final"):
        if t.failure or not t.history or not t.full_budget:
            continue  # failed, or unfinished (a later run of reproduce.py continues it)
        rep = t.replica
        out.setdefault(rep["label"], {})[rep.get("seed")] = {"last": t.last, "history": t.history}
    return out


def values(reps: dict, label: str, key: str) -> dict:
    return {s: r["last"].get(key) for s, r in reps.get(label, {}).items()}


def cell(reps: dict, label: str, key: str) -> str:
    s = summarize([100 * v for v in values(reps, label, key).values() if v is not None])
    return "—" if not s.n else f"{s.mean:.1f} ± {s.std:.1f}" + ("" if s.n == 3 else f" (n={s.n})")


def judge(reps: dict, a: str, b: str, key: str = "best_val") -> tuple[str, str]:
    """(verdict, 'Δ +1.2 [-0.3, +2.7]') of the claim 'a beats b' on the paired per-seed difference."""
    d, _ = paired(values(reps, a, key), values(reps, b, key))
    if not d.n:
        return "not measured", "—"
    text = f"Δ {100 * d.mean:+.1f}" + (f" [{100 * d.lo:+.1f}, {100 * d.hi:+.1f}]" if d.n > 1 else "") + f" (n={d.n})"
    if verdict(d) == "better":  # the study report's rule: the paired interval lies above 0
        return "reproduced", text
    return ("partly" if d.mean > 0 else "not reproduced"), text


def overall(verdicts: list[str]) -> str:
    measured = [v for v in verdicts if v != "not measured"]
    if not measured:
        return "not measured"
    if all(v == "reproduced" for v in measured):
        return "reproduced"
    if any(v == "reproduced" for v in measured) or all(v == "partly" for v in measured):
        return "partly"  # significant somewhere, or the right direction everywhere
    return "not reproduced"


def _med(xs: list) -> float:
    xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return statistics.median(xs) if xs else math.nan


def adele_diagnostics(reps: dict, labels: list[tuple[str, str]], class_names: list[str] | None) -> list[str]:
    """Per ADELE configuration (medians over seeds): trigger epoch per class (1-based), correction
    epochs, pixel-weighted relabel precision of the first and of the later corrections, label mIoU
    (noisy -> best -> last) and the last IoU_el / IoU_m."""
    lines = ["| configuration | trigger epoch per class | corrections | relabel precision first / later | "
             "label mIoU noisy -> best -> last | last IoU_el / IoU_m |", "|---|---|---|---|---|---|"]
    for label, name in labels:
        per = reps.get(label, {})
        if not per:
            continue
        trig, ncorr, first, later, lab0, labmax, lablast, el, m = ([] for _ in range(9))
        for r in per.values():
            h, last = r["history"], r["last"]
            trig.append({int(k.rsplit("/", 1)[1]): v for k, v in last.items() if k.startswith("method/trigger/")})
            corr = [x for x in h if x.get("relabel/pixels")]
            ncorr.append(len(corr))
            if corr:
                first.append(corr[0].get("relabel/precision"))
                px = sum(x["relabel/pixels"] for x in corr[1:])
                later.append(sum(x["relabel/pixels"] * (x.get("relabel/precision") or 0) for x in corr[1:]) / px if px else math.nan)
            lab0.append(h[0].get("noise_miou"))
            labmax.append(max(x.get("label_miou", -1) for x in h))
            lablast.append(last.get("label_miou"))
            el.append(last.get("iou_el"))
            m.append(last.get("iou_m"))
        classes = sorted({c for t in trig for c in t})
        tcells = []
        for c in classes:
            vals = [t.get(c) for t in trig]
            fired = [v + 1 for v in vals if isinstance(v, (int, float)) and v >= 0]
            cname = class_names[c] if class_names and c < len(class_names) else str(c)
            tcells.append(f"{cname} {_med(fired):.0f}" if len(fired) == len(vals) else
                          f"{cname} {'never' if not fired else f'{_med(fired):.0f} ({len(fired)}/{len(vals)})'}")
        lines.append(f"| {name} | {', '.join(tcells) or '—'} | {_med(ncorr):.0f} | {_med(first):.2f} / {_med(later):.2f} | "
                     f"{_med(lab0):.3f} -> {_med(labmax):.3f} -> {_med(lablast):.3f} | {_med(el):.3f} / {_med(m):.3f} |")
    return lines


def memorisation(settings: list[tuple[str, dict]], labels: list[tuple[str, str]]) -> list[str]:
    """Per configuration and setting (medians over seeds): IoU_el at its peak -> at the last epoch,
    and the last IoU_m: how far each method memorises the wrong labels."""
    lines = ["| configuration | " + " | ".join(f"{s}: IoU_el peak -> last, IoU_m" for s, _ in settings) + " |",
             "|---|" + "---|" * len(settings)]
    for label, name in labels:
        cells = []
        for _, reps in settings:
            per = reps.get(label, {})
            if not per:
                cells.append("—")
                continue
            peak = _med([max((x.get("iou_el") or 0) for x in r["history"]) for r in per.values()])
            cells.append(f"{peak:.2f} -> {_med([r['last'].get('iou_el') for r in per.values()]):.2f}, "
                         f"{_med([r['last'].get('iou_m') for r in per.values()]):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def learned_epochs(reps: dict, label: str, level: float = 0.3) -> str:
    """Median epoch each class's training IoU (vs the labels trained on) first reaches ``level``."""
    per = reps.get(label, {})
    if not per:
        return "—"
    names = list(dict.fromkeys(k.split("/", 1)[1] for r in per.values() for k in r["last"] if k.startswith("train_iou/")))
    cells = []
    for c in names:
        eps = [next((x["epoch"] for x in r["history"] if (x.get(f"train_iou/{c}") or 0) >= level), None) for r in per.values()]
        got = [e for e in eps if e is not None]
        cells.append(f"{c} {_med(got):.0f}" if len(got) == len(eps) else f"{c} {'never' if not got else f'{_med(got):.0f} ({len(got)}/{len(eps)})'}")
    return ", ".join(cells)


# -- protocols ---------------------------------------------------------------------------------------

def p1(reps: dict, ds: str, fig_dir: Path) -> tuple[list[str], list[tuple]]:
    """Early learning, then memorisation: ce's IoU_el / IoU_m per epoch (ADELE Fig. 1)."""
    lines = ["| configuration | n | IoU_el peak: epoch (value) | last IoU_el | last IoU_m | IoU_m gain after the peak |",
             "|---|---|---|---|---|---|"]
    claims = []
    for label in ("ce", "tuned"):
        hists = [r["history"] for r in reps.get(label, {}).values()]
        if not hists:
            continue
        n = min(len(h) for h in hists)
        el = [statistics.fmean(h[i].get("iou_el", math.nan) for h in hists) for i in range(n)]
        m = [statistics.fmean(h[i].get("iou_m", math.nan) for h in hists) for i in range(n)]
        peak = max(range(n), key=lambda i: el[i])
        name = "ce" if label == "ce" else "adele"
        lines.append(f"| {name} | {len(hists)} | {peak + 1} ({el[peak]:.3f}) | {el[-1]:.3f} | {m[-1]:.3f} | "
                     f"{m[-1] - m[peak]:+.3f} |")
        if label == "ce":
            ok = el[peak] > el[-1] + 0.05 and m[-1] > m[peak] + 0.05
            claims.append(("1", "ce: IoU_el peaks early, then falls while IoU_m climbs (memorisation)",
                           "Fig. 1: yes (VOC, SegTHOR)", "reproduced" if ok else "not reproduced",
                           f"IoU_el {el[peak]:.2f} at epoch {peak + 1} -> {el[-1]:.2f}; IoU_m {m[peak]:.2f} -> {m[-1]:.2f}"))
            _curve(fig_dir, ds, hists)
    lines += ["", f"Epoch each class is learned by ce (training IoU vs its labels >= 0.3, median of seeds): "
                  f"{learned_epochs(reps, 'ce')}."]
    return lines, claims


def _curve(fig_dir: Path, ds: str, hists: list[list[dict]]) -> None:
    """ce's IoU_el and IoU_m per epoch, one line per seed (protocol 1's figure)."""
    try:
        import matplotlib
    except ImportError:  # a GPU box without matplotlib: the figures are drawn back home (--tables-only)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, h in enumerate(hists):
        ep = [r.get("epoch") for r in h]
        ax.plot(ep, [r.get("iou_el") for r in h], color="C0", alpha=0.7, label="IoU_el (vs clean)" if i == 0 else None)
        ax.plot(ep, [r.get("iou_m") for r in h], color="C3", alpha=0.7, label="IoU_m (vs noisy)" if i == 0 else None)
    ax.set(xlabel="epoch", ylabel="IoU on wrongly labelled training pixels",
           title=f"{ds}: ce under morph noise, {len(hists)} seeds (protocol 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fig_dir / f"p1_{ds}.png", dpi=110)
    plt.close(fig)


def p2(reps: dict) -> tuple[list[str], list[tuple]]:
    lines = ["| configuration | best-val | max-test | last | paper (SegTHOR) best-val / max-test / last |",
             "|---|---|---|---|---|"]
    for label, name in (("ce", "baseline (ce)"), ("adele_global", "ADELE w/o class adaptivity"), ("tuned", "ADELE")):
        paper = " / ".join(f"{v:.1f}" for v in PAPER["adele_table1"][label])
        lines.append(f"| {name} | " + " | ".join(cell(reps, label, k) for k in KEYS) + f" | {paper} |")
    v1, t1 = judge(reps, "tuned", "ce")
    v2, t2 = judge(reps, "tuned", "adele_global")
    return lines, [("2", "ADELE beats ce", "+8.5 best-val", v1, t1),
                   ("2", "ADELE beats its one-trigger ablation", "+30.4 best-val", v2, t2)]


def p3(reps: dict) -> tuple[list[str], list[tuple]]:
    cols = (("single", "single scale"), ("ms_input", "multiscale input"), ("ms_consistency", "multiscale consistency"))
    lines = ["| label correction | " + " | ".join(c[1] for c in cols) + " |", "|---|---|---|---|"]
    for corr in ("off", "on"):
        cells = [f"{cell(reps, TABLE2[(corr, c)], 'last')} (paper {PAPER['adele_table2'][(corr, c)]:.1f})" for c, _ in cols]
        lines.append(f"| {corr} | " + " | ".join(cells) + " |")
    lines += ["", "Same grid, best-val (the study's selection rule):", "",
              "| label correction | " + " | ".join(c[1] for c in cols) + " |", "|---|---|---|---|"]
    for corr in ("off", "on"):
        lines.append(f"| {corr} | " + " | ".join(cell(reps, TABLE2[(corr, c)], "best_val") for c, _ in cols) + " |")
    claims = []
    for c, name in cols:
        paper = PAPER["adele_table2"][("on", c)] - PAPER["adele_table2"][("off", c)]
        v, t = judge(reps, TABLE2[("on", c)], TABLE2[("off", c)], "last")
        claims.append(("3", f"label correction helps ({name}, last epoch)", f"{paper:+.1f} last", v, t))
    v, t = judge(reps, TABLE2[("on", "ms_consistency")], TABLE2[("on", "single")], "last")
    claims.append(("3", "multiscale consistency beats single scale (with correction, last epoch)", "+7.0 last", v, t))
    return lines, claims


def p4(levels: list[tuple[str, dict]], ds: str, fig_dir: Path) -> tuple[list[str], list[tuple]]:
    lines = ["| morph rate | noisy label mIoU | ce best-val | ADELE best-val | Δ ADELE − ce [95% interval] |",
             "|---|---|---|---|---|"]
    points, verdicts, texts = [], [], []
    for rate, reps in levels:
        noise = [r["last"].get("noise_miou") for per in reps.values() for r in per.values()]
        noise_m = statistics.fmean(x for x in noise if x is not None) if any(x is not None for x in noise) else math.nan
        v, t = judge(reps, "tuned", "ce")
        verdicts.append(v)
        texts.append(f"{rate}: {t}")
        lines.append(f"| {rate} | {noise_m:.3f} | {cell(reps, 'ce', 'best_val')} | {cell(reps, 'tuned', 'best_val')} | {t} |")
        points.append((noise_m, summarize([100 * x for x in values(reps, "ce", "best_val").values() if x is not None]),
                       summarize([100 * x for x in values(reps, "tuned", "best_val").values() if x is not None])))
    _levels_figure(fig_dir, ds, points)
    return lines, [("4", "ADELE beats ce at every corruption level", "Fig. 7: above at every level",
                    overall(verdicts), "; ".join(texts))]


def _levels_figure(fig_dir: Path, ds: str, points: list) -> None:
    try:
        import matplotlib
    except ImportError:  # a GPU box without matplotlib: the figures are drawn back home (--tables-only)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(p for p in points if p[1].n and p[2].n and not math.isnan(p[0]))
    if not points:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for idx, (name, color) in ((1, ("baseline (ce)", "C0")), (2, ("ADELE", "C3"))):
        xs = [p[0] for p in points]
        ys = [p[idx].mean for p in points]
        err = [[p[idx].mean - p[idx].lo if p[idx].n > 1 else 0 for p in points],
               [p[idx].hi - p[idx].mean if p[idx].n > 1 else 0 for p in points]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, label=name, color=color)
    ax.set(xlabel="label mIoU of the noisy training labels", ylabel="test mIoU % (best-val: mean, 95% CI)",
           title=f"{ds}: ce vs ADELE across corruption levels (protocol 4)")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fig_dir / f"p4_{ds}.png", dpi=110)
    plt.close(fig)


def p5(settings: list[tuple[str, dict]]) -> tuple[list[str], list[tuple]]:
    names = [s for s, _ in settings]
    lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, name in (("ce", "ce"), ("gce", "gce"), ("sce", "sce"), ("tuned", "lncis")):
        cells = []
        for s, reps in settings:
            paper = PAPER["lncis"][label].get(s)
            cells.append(cell(reps, label, "best_val") + (f" (paper {paper:.1f})" if paper is not None else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    claims = []
    for base, paper in (("ce", "+4.3 / +6.6 / +6.7 sym, +1.0 / +0.6 asym AP"), ("sce", "+3.9 / +6.0 / +5.9 sym, +0.3 / +0.2 asym AP"),
                        ("gce", "+3.2 / +5.2 / +7.7 sym, +1.8 / +2.8 asym AP")):
        vs, ts = [], []
        for s, reps in settings:
            v, t = judge(reps, "tuned", base)
            vs.append(v)
            ts.append(f"{s}: {t}")
        claims.append(("5", f"lncis beats {base} (every noise setting)", paper, overall(vs), "; ".join(ts)))
    lines += ["", "Last epoch (LNCIS's advantage in the paper is largest late):", "",
              "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, name in (("ce", "ce"), ("gce", "gce"), ("sce", "sce"), ("tuned", "lncis")):
        lines.append(f"| {name} | " + " | ".join(cell(reps, label, "last") for _, reps in settings) + " |")
    for base in ("ce", "sce", "gce"):
        vs, ts = [], []
        for s, reps in settings:
            v, t = judge(reps, "tuned", base, "last")
            vs.append(v)
            ts.append(f"{s}: {t}")
        claims.append(("5", f"lncis beats {base} at the last epoch (every noise setting)", "larger late (paper)",
                       overall(vs), "; ".join(ts)))
    return lines + ["", *isolation(settings)], claims


def isolation(settings: list[tuple[str, dict]]) -> list[str]:
    """LNCIS's isolation rule (its PON role) per epoch against the injected flips, medians over seeds:
    isolated pixels, precision (share of them flipped), recall (share of flipped pixels isolated)."""
    rows = []
    for s, reps in settings:
        hists = [r["history"] for r in reps.get("tuned", {}).values()]
        if not hists or not any("isolation/pixels" in h for hist in hists for h in hist):
            continue
        cells = []
        n = max(len(h) for h in hists)
        for e in sorted({0, n - 1, *range(4, n, 5)}):  # epochs 1, 5, 10, ... and the last
            at = [h[e] for h in hists if e < len(h)]
            med = lambda k: _med([h.get(k) for h in at])  # noqa: E731
            share = lambda k: "—" if math.isnan(med(k)) else f"{med(k):.2f}"  # noqa: E731  (no pixel isolated)
            cells.append(f"{e + 1}: {med('isolation/pixels'):.0f} px, P {share('isolation/precision')}, "
                         f"R {share('isolation/recall')}")
        rows.append(f"| {s} | " + "; ".join(cells) + " |")
    if not rows:
        return []
    return ["Isolation by lncis's rule (PON: labelled and predicted foreground, CE > gamma) vs the injected flips, "
            "at epochs 1, 5, 10, ... (medians over seeds; precision P = flipped share of the isolated pixels, recall R = isolated "
            "share of the flipped pixels; stage 2 isolates them, stage 1 shows what it would):", "",
            "| setting | epoch: isolated pixels, P, R |", "|---|---|", *rows]


def p6(settings: list[tuple[str, dict]]) -> tuple[list[str], list[tuple]]:
    names = [s for s, _ in settings]
    lines = ["| loss on unlabelled pixels | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows = (("ce", "ce (method)"), ("pu_ce", "pu, pu_loss ce"), ("weighted", "pu, weighted"),
            ("tuned", "pu, exponential (default)"), ("bootstrap_hard", "pu, bootstrap_hard"), ("upu", "pu, upu"),
            ("nnpu", "pu, nnpu"))
    for label, name in rows:
        lines.append(f"| {name} | " + " | ".join(cell(reps, label, "best_val") for _, reps in settings) + " |")
    claims = []
    for label, name, paper in (("tuned", "exponential", "+34 F1 (0.78 vs 0.44)"), ("weighted", "weighted", "+32 F1 (0.76 vs 0.44)")):
        drops = [(s, r) for s, r in settings if s.startswith("drop")]
        vs, ts = [], []
        for s, reps in drops:
            v, t = judge(reps, label, "ce")
            vs.append(v)
            ts.append(f"{s}: {t}")
        claims.append(("6", f"pu {name} beats ce under drop noise", paper, overall(vs), "; ".join(ts)))
    mis = [(s, r) for s, r in settings if not s.startswith("drop")]
    if mis:
        v, t = judge(mis[0][1], "tuned", "ce")
        claims.append(("6", "pu exponential vs ce under misannotation (0 -> k)", "no number in the draft",
                       "not measured" if v == "not measured" else
                       f"no claim ({'not above' if v == 'not reproduced' else 'above'} ce)", t))
    return lines, claims


# -- the document ------------------------------------------------------------------------------------

def write(studies: list, out: Path, fig_dir: Path, protocols: dict, args) -> Path:
    fig_dir.mkdir(parents=True, exist_ok=True)
    by: dict[tuple[str, str], Any] = {(stem, ds): spec for stem, ds, _, spec in studies}
    datasets = list(dict.fromkeys(ds for _, ds, _, _ in studies))
    md = ["# Reproducing the papers' claims", "",
          "Written by `python benchmarks/reproduce.py` from the paper studies (`search_spaces/paper/*.yaml`); "
          "docs/results.md discusses the verdicts. Test mIoU % as mean ± std over 3 fresh seeds (1, 2, 3): "
          "best-val (at the best validation epoch), max-test (best test epoch: shown only beside the papers' "
          "numbers), last. Each seed is the trial seed and the noise seed, so the configurations of a seed "
          "share their noisy labels and are compared pairwise; a claim is *reproduced* when the paired Δ's "
          "95% interval lies above 0, *partly* when its mean is above 0 but the interval holds 0, *not "
          "reproduced* otherwise (over several noise settings: reproduced in every one / somewhere or in the "
          "right direction everywhere / neither). The papers' numbers are on other data (SegTHOR CT, VOC instance masks, "
          "CIFAR), so only the direction and the rough size compare.", ""]
    claims: list[tuple] = []
    for ds in datasets:
        md += [f"## {ds}", ""]
        exp = lambda stem: Path(by[(stem, ds)].storage.path) / by[(stem, ds)].name  # noqa: E731
        ensure_report = [exp(stem) for stem in protocols if (stem, ds) in by]
        for e in ensure_report:
            _report(e)
        sections = []
        if ("adele_ablation", ds) in by:
            reps = replicates(exp("adele_ablation"), "main")
            lines, c1 = p1(reps, ds, fig_dir)
            sections += [("Protocol 1: early learning, then memorisation (ce, morph noise on every image)",
                          lines + ["", f"![protocol 1 {ds}](figures/reproduce/p1_{ds}.png)"], c1)]
            lines, c2 = p2(reps)
            sections.append(("Protocol 2: ADELE Table 1 (morph noise on every image)", lines, c2))
            lines, c3 = p3(reps)
            sections.append(("Protocol 3: ADELE Table 2 (last epoch; paper: SegTHOR)", lines, c3))
            diag = adele_diagnostics(reps, [("tuned", "ADELE"), ("adele_global", "ADELE w/o class adaptivity"),
                                            ("corr_single", "correction, single scale"),
                                            ("corr_ms_input", "correction, multiscale input")], _class_names(reps))
            sections.append(("ADELE's diagnostics (protocols 2-3; medians over seeds)", diag, []))
        if ("adele_levels", ds) in by:
            levels = [(c["noise.0.rate"], replicates(exp("adele_levels"), condition_slug(c)))
                      for c in by[("adele_levels", ds)].condition_list()]
            if ("adele_ablation", ds) in by:
                levels.append((1.0, replicates(exp("adele_ablation"), "main")))
            lines, c4 = p4(levels, ds, fig_dir)
            sections.append(("Protocol 4: ADELE Fig. 7, across corruption levels",
                             lines + ["", f"![protocol 4 {ds}](figures/reproduce/p4_{ds}.png)"], c4))
        settings5 = []
        for stem, tag in (("lncis_symmetric", "sym"), ("lncis_asymmetric", "asym")):
            if (stem, ds) in by:
                settings5 += [(f"{tag} {c['noise.0.rate']}", replicates(exp(stem), condition_slug(c)))
                              for c in by[(stem, ds)].condition_list()]
        if settings5:
            lines, c5 = p5(settings5)
            sections.append(("Protocol 5: LNCIS under class flips (best-val; paper: VOC mask mAP)", lines, c5))
            sections.append(("Memorisation under class flips (protocol 5; medians over seeds)",
                             memorisation(settings5, [("ce", "ce"), ("gce", "gce"), ("sce", "sce"), ("tuned", "lncis")]), []))
        settings6 = [(tag, replicates(exp(stem), "main")) for stem, tag in
                     (("pu_drop30", "drop 0.3"), ("pu_drop50", "drop 0.5"), ("pu_misannotate", "misannotate 0.5"))
                     if (stem, ds) in by]
        if settings6:
            lines, c6 = p6(settings6)
            sections.append(("Protocol 6: PU losses under inexhaustive annotation and misannotation (best-val)", lines, c6))
            sections.append(("Memorisation under missing and wrong objects (protocol 6; medians over seeds)",
                             memorisation(settings6, [("ce", "ce"), ("weighted", "pu weighted"), ("tuned", "pu exponential"),
                                                      ("nnpu", "pu nnpu")]), []))
        for title, lines, cl in sections:
            md += [f"### {title}", "", *lines, ""]
            claims += [(ds, *c) for c in cl]
        md += ["### Wall time", "", "| study | wall time (all runs of reproduce.py) | command |", "|---|---|---|"]
        for stem in protocols:
            if (stem, ds) in by:
                md.append(f"| {by[(stem, ds)].name} | {_wall(exp(stem))} | "
                          f"`python -m study.run search_spaces/paper/{stem}{'' if ds == 'synthetic' else '_' + ds}.yaml` |")
        md.append("")
    md += ["## Verdicts", "", "| dataset | protocol | claim | paper | ours | verdict |", "|---|---|---|---|---|---|"]
    md += [f"| {ds} | {p} | {claim} | {paper} | {ours} | **{v}** |" for ds, p, claim, paper, v, ours in claims]
    cmd = "python benchmarks/reproduce.py" + (f" --device {args.device}" if args.device != "cpu" else "") + \
          (f" --scale {args.scale}" if args.scale != "cpu" else "")
    md += ["", f"Command: `{cmd}` (reruns continue where they stopped)."]
    out.write_text("\n".join(md) + "\n")
    return out


def _class_names(reps: dict) -> list[str] | None:
    """Class names by index, from the per-class keys of any replicate (train_iou/<name>, in order)."""
    for per in reps.values():
        for r in per.values():
            names = [k.split("/", 1)[1] for k in r["last"] if k.startswith("train_iou/")]
            if names:
                return names
    return None


def _report(exp_dir: Path) -> None:
    """The study's own report, when the experiment is finished and Optuna is importable."""
    if not (exp_dir / "study.yaml").exists() or (exp_dir / "report" / "report.md").exists():
        return
    try:
        from study.report import write_report
        write_report(exp_dir)
    except ImportError:
        pass  # a GPU box without Optuna: the tables below need only the trial folders


def _wall(exp_dir: Path) -> str:
    import json

    path = exp_dir / "reproduce_wall.json"
    if not path.exists():  # run by study.run directly: the span of its replicates' Ray timestamps
        stamps = [(r.get("timestamp"), r.get("time_this_iter_s") or 0) for d in exp_dir.glob("*-final")
                  for t in read_trials(d) for r in t.history if r.get("timestamp")]
        if not stamps:
            return "—"
        total = max(s for s, _ in stamps) - min(s - dt for s, dt in stamps)
        return f"{int(total // 60)} min {int(total % 60)} s (replicates only)"
    runs = json.loads(path.read_text())["runs"]
    total = sum(r["seconds"] for r in runs)
    return f"{int(total // 60)} min {int(total % 60)} s" + (f" ({len(runs)} runs)" if len(runs) > 1 else "")
