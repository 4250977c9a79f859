"""``python -m study.report EXPERIMENT_DIR``: tables, figures and best trial YAMLs of a study.

Reads only files: the stored spec (study.yaml), Ray's trial folders (params.json, result.json) and
the Optuna storage. Writes ``EXPERIMENT_DIR/report/``:

- ``report.md``: the replication table (rows conditions, columns configurations; mean ± std of
  best-val / max-test / last over the seeds, mIoU in %), the search summary, figure links;
- ``trials.csv`` (every search trial once, with its Optuna state), ``final.csv`` (every replicate),
  ``table.csv`` (the table's numbers), ``importances.csv``;
- ``figures/``: per-class training-IoU curves of the best trial with ADELE's fitted curves and
  trigger epochs, its IoU_el / IoU_m, the metric per trial, Optuna parameter importances;
- ``best_<condition>.yaml``: the best search trial as a trial config (``python -m trainables.run``).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from trainables.config import parse_trial, dump_trial_config
from trainables.errors import UserError

from .spec import StudySpec, condition_slug, load_study, set_keys, with_condition

SUMMARY = ("best_val", "max_test", "last")


# -- reading -----------------------------------------------------------------------------------------

def read_trials(ray_dir: Path) -> list[dict]:
    """Every Ray trial under ``ray_dir`` once: config, per-epoch history (deduplicated by epoch, the
    latest write wins: a resumed trial re-reports from its checkpoint) and the last result."""
    out = []
    for params in sorted(ray_dir.glob("*/params.json")):
        tdir = params.parent
        config = json.loads(params.read_text())
        by_epoch: dict[int, dict] = {}
        trial_id = None
        results = tdir / "result.json"
        if results.exists():
            for line in results.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
                trial_id = row.get("trial_id", trial_id)
                by_epoch[int(row.get("epoch", row.get("training_iteration", 0)))] = row
        history = [by_epoch[e] for e in sorted(by_epoch)]
        out.append({"trial_id": trial_id or tdir.name, "dir": str(tdir), "config": config,
                    "history": history, "last": history[-1] if history else {}})
    seen: dict[str, dict] = {}
    for t in out:  # one entry per trial id
        seen[t["trial_id"]] = t
    return list(seen.values())


def optuna_states(spec: StudySpec, exp_dir: Path, slug: str) -> dict[str, dict]:
    """Ray trial id -> {number, state, value} from the condition's Optuna study."""
    try:
        from .searcher import RAY_ID
        from .tuner import load_optuna_study
        study = load_optuna_study(spec, exp_dir, slug)
    except Exception:  # noqa: BLE001 - no study (yet): report without states
        return {}
    return {t.user_attrs.get(RAY_ID, f"optuna-{t.number}"): {"number": t.number, "state": t.state.name,
                                                             "value": t.value} for t in study.trials}


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(mean: float, std: float) -> str:
    return "n/a" if math.isnan(mean) else f"{100 * mean:.2f} ± {100 * std:.2f}"


# -- writing -----------------------------------------------------------------------------------------

def write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def params_of(config: dict) -> dict:
    return {k: v for k, v in config.items() if "." in k}


def write_report(exp_dir: str | Path) -> Path:
    exp_dir = Path(exp_dir)
    if not (exp_dir / "study.yaml").is_file():
        raise UserError(f"{exp_dir}: not an experiment folder (no study.yaml)")
    spec = load_study(exp_dir / "study.yaml")
    out = exp_dir / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    metric = spec.metric.name
    trials_rows, final_rows, table_rows, imp_rows, md_figs = [], [], [], [], []
    search_lines = []
    for condition in spec.condition_list():
        slug = condition_slug(condition)
        search = read_trials(exp_dir / slug)
        states = optuna_states(spec, exp_dir, slug)
        for t in search:
            st = states.get(t["trial_id"], {})
            last = t["last"]
            trials_rows.append({"condition": slug, "trial_id": t["trial_id"], "optuna_number": st.get("number"),
                                "optuna_state": st.get("state"), "epochs": last.get("epoch"),
                                "epochs_total": last.get("epochs_total"), metric: last.get(metric),
                                **{k: last.get(k) for k in SUMMARY}, **params_of(t["config"])})
        full = [t for t in search if t["last"].get(metric) is not None
                and t["last"].get("epoch", 0) >= t["last"].get("epochs_total", math.inf)]
        full.sort(key=lambda t: t["last"][metric], reverse=spec.metric.mode == "max")
        best = full[0] if full else None
        n_state = {}
        for t in search:
            s = states.get(t["trial_id"], {}).get("state", "?")
            n_state[s] = n_state.get(s, 0) + 1
        states_str = ", ".join(f"{k} {v}" for k, v in sorted(n_state.items()))
        best_str = "n/a" if best is None else f"{best['last'][metric]:.4f}"
        best_params = "" if best is None else _params_str(params_of(best["config"]))
        search_lines.append(f"| {slug} | {len(search)} | {states_str} | {best_str} | {best_params} |")
        if best is not None:
            trial = set_keys(with_condition(spec, condition), params_of(best["config"]))
            (out / f"best_{slug}.yaml").write_text(dump_trial_config(parse_trial(trial)))

        finals = read_trials(exp_dir / f"{slug}-final")
        row: dict[str, Any] = {"condition": slug}
        by_rank: dict[int, list[dict]] = {}
        for t in finals:
            rep = t["config"].get("replica") or {}
            by_rank.setdefault(int(rep.get("rank", 1)), []).append(t)
            final_rows.append({"condition": slug, "rank": rep.get("rank"), "seed": rep.get("seed"),
                               "source_trial": rep.get("source_trial"), "epochs": t["last"].get("epoch"),
                               **{k: t["last"].get(k) for k in SUMMARY},
                               **{k: v for k, v in (rep.get("overrides") or {}).items() if "." in k}})
        for rank, ts in sorted(by_rank.items()):
            for k in SUMMARY:
                m, s = mean_std([t["last"].get(k) for t in ts])
                row[f"#{rank} {k} mean"], row[f"#{rank} {k} std"] = m, s
            row[f"#{rank} n"] = len(ts)
        table_rows.append(row)
        imp_rows += _importances(spec, exp_dir, slug)
        md_figs += _figures(out / "figures", slug, best, search, imp_rows, metric)

    write_csv(out / "trials.csv", trials_rows)
    write_csv(out / "final.csv", final_rows)
    write_csv(out / "table.csv", table_rows)
    write_csv(out / "importances.csv", imp_rows)
    (out / "report.md").write_text(_markdown(spec, table_rows, search_lines, md_figs))
    return out / "report.md"


def _params_str(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _importances(spec: StudySpec, exp_dir: Path, slug: str) -> list[dict]:
    try:
        import optuna
        from .tuner import load_optuna_study
        study = load_optuna_study(spec, exp_dir, slug)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(done) < 2:
            return []
        imp = optuna.importance.get_param_importances(study)
    except Exception:  # noqa: BLE001 - importances need enough varied trials; skip otherwise
        return []
    return [{"condition": slug, "parameter": k, "importance": v} for k, v in imp.items()]


def _markdown(spec: StudySpec, table_rows: list[dict], search_lines: list[str], figs: list[str]) -> str:
    ranks = sorted({int(k.split()[0][1:]) for r in table_rows for k in r if k.startswith("#")})
    head = ["condition"] + [f"#{r} {k}" for r in ranks for k in SUMMARY]
    lines = [f"# Study {spec.name}", "",
             f"Metric: `{spec.metric.name}` ({spec.metric.goal}); {spec.search.num_samples} trials per condition "
             f"({spec.search.algorithm}, seed {spec.search.seed}); replication: top {spec.final.top_k} "
             f"x seeds {spec.final.seeds}.", "",
             "## Replication (mIoU %, mean ± std over seeds)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table_rows:
        cells = [r["condition"]] + [fmt(r.get(f"#{k} {m} mean", math.nan), r.get(f"#{k} {m} std", math.nan))
                                    for k in ranks for m in SUMMARY]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Search", "", "| condition | trials | Optuna states | best | parameters |", "|---|---|---|---|---|",
              *search_lines, "", "## Figures", ""]
    lines += [f"![{f}](figures/{f})" for f in figs]
    return "\n".join(lines) + "\n"


# -- figures -----------------------------------------------------------------------------------------

def _figures(fig_dir: Path, slug: str, best: dict | None, search: list[dict], imp_rows: list[dict],
             metric: str) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(fig_dir / name, dpi=90)
        plt.close(fig)
        names.append(name)

    if best is not None and best["history"]:
        hist = best["history"]
        epochs = [h["epoch"] for h in hist]
        classes = [k.split("/", 1)[1] for k in hist[-1] if k.startswith("train_iou/")]
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, cname in enumerate(classes):
            line, = ax.plot(epochs, [h.get(f"train_iou/{cname}") for h in hist], marker=".", label=cname)
            _adele_overlay(ax, hist[-1], i, line.get_color())
        ax.set(xlabel="epoch", ylabel="training IoU", title=f"{slug}: per-class training IoU (best trial)")
        ax.legend(fontsize=7)
        save(fig, f"train_iou_{slug}.png")
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key in ("iou_el", "iou_m"):
            ax.plot(epochs, [h.get(key) for h in hist], marker=".", label=key)
        ax.set(xlabel="epoch", ylabel="IoU", title=f"{slug}: IoU_el / IoU_m (best trial)")
        ax.legend()
        save(fig, f"iou_el_m_{slug}.png")
    if search:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for t in search:
            ys = [h.get(metric) for h in t["history"]]
            ax.plot([h.get("epoch") for h in t["history"]], ys, marker=".", alpha=0.7)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{slug}: {metric} per trial")
        save(fig, f"metric_per_trial_{slug}.png")
    imp = [r for r in imp_rows if r["condition"] == slug]
    if imp:
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(imp)))
        ax.barh([r["parameter"] for r in imp][::-1], [r["importance"] for r in imp][::-1])
        ax.set(xlabel="importance", title=f"{slug}: Optuna parameter importances")
        save(fig, f"importance_{slug}.png")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m study.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment_dir", help="the study's folder: <storage>/<name>")
    args = ap.parse_args(argv)
    try:
        path = write_report(args.experiment_dir)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
