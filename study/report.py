"""``python -m study.report EXPERIMENT_DIR``: verdict, tables, figures and best trial YAMLs of a study.

Reads only files: the stored spec (study.yaml), Ray's trial folders (params.json, result.json) and
the Optuna storage. Writes ``EXPERIMENT_DIR/report/``:

- ``report.md``: first the verdict per condition (the tuned configuration beside each baseline over
  the fresh replication seeds: mean ± std, 95% interval, paired difference per seed with its
  interval), then every replicate number, the search summary, figure links;
- ``trials.csv`` (every search trial once, with its Optuna state), ``final.csv`` (every replicate),
  both also as ``.parquet``,
  ``table.csv`` (per configuration: n, mean, std, interval), ``comparisons.csv`` (paired
  differences), ``importances.csv``;
- ``figures/`` (see :mod:`study.figures`);
- ``best_<condition>.yaml``: the best search trial as a trial config (``python -m trainables.run``).

Model selection uses validation numbers only: the best search trial is the one with the best
``metric`` (study.spec.metric refuses test metrics), and a replicate's ``best_val`` is the test mIoU at its
best validation epoch. ``max_test`` selects on test and is shown only beside the papers' numbers.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.config import dump_trial_config, get_value
from trainables.errors import UserError
from trainables.tables import write_csv

from . import figures
from .results import TrialRecord, best_trials, params_of, read_trials
from .spec import StudySpec, condition_slug, load_study
from .stats import LEVEL, Summary, paired, summarize, verdict

SUMMARY = ("best_val", "max_test", "last")
COMPARED = ("best_val", "last")  # the verdict's numbers: chosen on validation, and the last epoch
LEARNED = 0.3  # a class counts as learned from the first epoch its training IoU reaches this


# -- reading -----------------------------------------------------------------------------------------

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


def display_names(spec: StudySpec, condition: dict, labels) -> dict[str, str]:
    """``tuned`` -> ``adele (tuned)``; baselines keep their names."""
    method = str(get_value(spec.condition(condition).base, "method.name", "method"))
    if spec.search.num_samples == 0:  # no search: the trial as configured
        return {lab: f"{method} (as configured)" if lab == "tuned" else lab for lab in labels}
    return {lab: (f"{method} (tuned)" if lab == "tuned" else f"{method} (tuned {lab[5:]})"
                  if lab.startswith("tuned#") else lab) for lab in labels}


# -- writing -----------------------------------------------------------------------------------------

def write_parquet(path: Path, rows: list[dict]) -> None:
    """The rows as a Parquet table (pandas + pyarrow, installed with Ray); a column mixing types
    (e.g. a parameter that is a number in one trial and a string in another) is stored as text."""
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].dtype == object and len({type(v) for v in df[col].dropna()}) > 1:
            df[col] = df[col].map(lambda v: None if v is None else str(v))
    df.to_parquet(path, index=False)


def pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def mean_std(s: Summary) -> str:
    return "n/a" if not s.n else f"{100 * s.mean:.2f} ± {100 * s.std:.2f}"


def interval(s: Summary, signed: bool = False) -> str:
    if s.n < 2:
        return "n/a (n < 2)"
    f = "{:+.2f}" if signed else "{:.2f}"
    return f"[{f.format(100 * s.lo)}, {f.format(100 * s.hi)}]"


def write_report(exp_dir: str | Path) -> Path:
    """Read the experiment, compute every condition's report (:func:`condition_report`), then write
    the tables, the best trial YAMLs and report.md."""
    exp_dir = Path(exp_dir)
    if not (exp_dir / "study.yaml").is_file():
        raise UserError(f"{exp_dir}: not an experiment folder (no study.yaml)")
    spec = load_study(exp_dir / "study.yaml")
    out = exp_dir / "report"
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    reports = [condition_report(spec, exp_dir, condition) for condition in spec.condition_list()]
    figs = [f for r in reports for f in r.figures(fig_dir)]
    rows = {name: [row for r in reports for row in r.rows[name]] for name in TABLES}
    for name, data in rows.items():
        write_csv(out / f"{name}.csv", data)
    for name in ("trials", "final"):  # typed tables for pandas / pyarrow / DuckDB users
        write_parquet(out / f"{name}.parquet", rows[name])
    for r in reports:
        if r.best_yaml is not None:
            (out / f"best_{r.slug}.yaml").write_text(r.best_yaml)
    replication_md = [line for r in reports for line in r.replication_md]
    replication_md += [f"| failed | {f} | | | | | |" for r in reports for f in r.failed_replicates]
    (out / "report.md").write_text(_markdown(spec, [line for r in reports for line in r.verdict_md], replication_md,
                                             [line for r in reports for line in r.premise_md],
                                             [r.search_line for r in reports], figs))
    return out / "report.md"


TABLES = ("trials", "final", "table", "comparisons", "importances")  # report/<name>.csv


@dataclass
class ConditionReport:
    """Everything the report says about one condition: table rows (``rows``: name in
    :data:`TABLES` -> rows), markdown pieces, the best search trial's YAML (None: no full-budget
    trial), and what its figures are drawn from."""
    slug: str
    rows: dict[str, list[dict]]
    verdict_md: list[str]
    replication_md: list[str]
    premise_md: list[str]
    search_line: str
    failed_replicates: list[str]
    best_yaml: str | None
    _figure_data: dict[str, Any] = field(repr=False, default_factory=dict)

    def figures(self, fig_dir: Path) -> list[str]:
        """Draw this condition's figures into ``fig_dir``; returns their file names."""
        d = self._figure_data
        figs = figures.best_trial(fig_dir, self.slug, d["best"]) if d["best"] is not None else []
        figs += figures.metric_per_trial(fig_dir, self.slug, d["search"], d["states"], d["metric"])
        figs += figures.importances(fig_dir, self.slug, self.rows["importances"], d["n_complete"])
        figs += figures.versus_baselines(fig_dir, self.slug, d["by_label"], d["names"])
        figs += figures.replicate_curves(fig_dir, self.slug, {lab: d["histories"][lab] for lab in d["order"]},
                                         d["names"])
        return figs


def condition_report(spec: StudySpec, exp_dir: Path, condition: dict) -> ConditionReport:
    """Read one condition's search and replicates, and compute and render its part of the report."""
    slug = condition_slug(condition)
    metric = spec.metric.name
    states = optuna_states(spec, exp_dir, slug)
    search = read_trials(exp_dir / slug)
    trial_rows, search_line, best = _search_summary(spec, slug, search, states)

    finals = read_trials(exp_dir / f"{slug}-final")
    by_label: dict[str, dict[Any, dict]] = {}
    histories: dict[str, list[list[dict]]] = {}
    failed_replicates, final_rows = [], []
    for t in finals:
        rep = t.replica
        if t.failure:
            failed_replicates.append(f"{slug} {rep['label']} seed {rep.get('seed')}: {t.failure}")
        else:  # a failed or diverged replicate has no number to average: listed, not counted
            by_label.setdefault(rep["label"], {})[rep.get("seed")] = t.last
        histories.setdefault(rep["label"], []).append(t.history)
        final_rows.append({"condition": slug, "config": rep["label"], "seed": rep.get("seed"),
                           "source_trial": rep.get("source_trial"), "failure": t.failure,
                           "epochs": t.last.get("epoch"),
                           metric: t.last.get(metric), **{k: t.last.get(k) for k in SUMMARY},
                           **params_of(rep.get("overrides"))})
    order = sorted(lab for lab in by_label if lab.startswith("tuned")) + [b for b in spec.baselines if b in by_label]
    names = display_names(spec, condition, order)
    summaries, pairs = compare(spec, by_label, order)
    table_rows, comparison_rows = _verdict_rows(slug, by_label, order, summaries, pairs)
    imp = _importances(spec, exp_dir, slug)
    best_yaml = (dump_trial_config(spec.condition(condition).config_with(best.params), spec.plugins)
                 if best is not None else None)  # names the study's plugins: it re-runs as is
    return ConditionReport(
        slug=slug, rows={"trials": trial_rows, "final": final_rows, "table": table_rows,
                         "comparisons": comparison_rows, "importances": imp},
        verdict_md=_verdict_md(slug, order, names, summaries, pairs),
        replication_md=_replication_lines(slug, by_label, order, names),
        premise_md=_premise_lines(slug, histories, order, names), search_line=search_line,
        failed_replicates=failed_replicates, best_yaml=best_yaml,
        _figure_data={"best": best, "search": search, "states": states, "metric": metric, "by_label": by_label,
                      "names": names, "histories": histories, "order": order,
                      "n_complete": sum(1 for s in states.values() if s.get("state") == "COMPLETE")})


def _search_summary(spec: StudySpec, slug: str, search: list[TrialRecord],
                    states: dict) -> tuple[list[dict], str, TrialRecord | None]:
    """One condition's trials.csv rows, its search table line, and the best full-budget trial by
    the study's (validation) metric (:func:`study.results.best_trials`)."""
    metric = spec.metric.name
    failed = [f"#{states.get(t.trial_id, {}).get('number', '?')} ({t.trial_id}): {t.failure}"
              for t in search if t.failure]
    rows = [{"condition": slug, "trial_id": t.trial_id, "optuna_number": states.get(t.trial_id, {}).get("number"),
             "optuna_state": states.get(t.trial_id, {}).get("state"), "failure": t.failure,
             "epochs": t.last.get("epoch"), "epochs_total": t.last.get("epochs_total"), metric: t.last.get(metric),
             **{k: t.last.get(k) for k in SUMMARY}, **t.params} for t in search]
    best = next(iter(best_trials(search, metric, spec.metric.mode, 1)), None)
    n_state: dict[str, int] = {}
    for t in search:
        s = states.get(t.trial_id, {}).get("state") or ("FAIL" if t.failure else "?")
        if t.failure and t.failure.startswith("diverged"):
            s = "FAIL (diverged)"
        n_state[s] = n_state.get(s, 0) + 1
    states_str = ", ".join(f"{k} {v}" for k, v in sorted(n_state.items()))
    best_str = "n/a" if best is None else f"{best.last[metric]:.4f}"
    best_params = "" if best is None else _params_str(best.params)
    line = (f"| {slug} | {len(search)} | {states_str} | {best_str} | {best_params} |"
            + "".join(f"<br>failed {f}" for f in failed))
    return rows, line, best


def compare(spec: StudySpec, by_label: dict, order: list[str]) -> tuple[dict, dict]:
    """The numbers of the verdict: per configuration and number in :data:`SUMMARY` its
    :class:`~study.stats.Summary` over seeds; per baseline and number in :data:`COMPARED` the
    paired difference tuned - baseline over the seeds both have, with those seeds."""
    summaries = {lab: {key: summarize([r.get(key) for r in by_label[lab].values()]) for key in SUMMARY}
                 for lab in order}
    pairs: dict[str, dict[str, tuple[Summary, list]]] = {}
    if "tuned" in order:
        for b in (lab for lab in order if not lab.startswith("tuned")):
            pairs[b] = {key: paired({s: r.get(key) for s, r in by_label["tuned"].items()},
                                    {s: r.get(key) for s, r in by_label[b].items()}) for key in COMPARED}
    return summaries, pairs


def _verdict_rows(slug: str, by_label: dict, order: list[str], summaries: dict,
                  pairs: dict) -> tuple[list[dict], list[dict]]:
    """table.csv and comparisons.csv rows of one condition."""
    table = []
    for lab in order:
        rec: dict[str, Any] = {"condition": slug, "config": lab,
                               "seeds": " ".join(str(s) for s in sorted(by_label[lab], key=str))}
        for key, s in summaries[lab].items():
            rec.update({f"{key} n": s.n, f"{key} mean": s.mean, f"{key} std": s.std, f"{key} lo": s.lo,
                        f"{key} hi": s.hi})
        table.append(rec)
    comparisons = [{"condition": slug, "config": "tuned", "baseline": b, "metric": key, "pairs": d.n,
                    "seeds": " ".join(map(str, seeds)), "mean_diff": d.mean, "std_diff": d.std, "lo": d.lo,
                    "hi": d.hi, "verdict": verdict(d)}
                   for b, per in pairs.items() for key, (d, seeds) in per.items()]
    return table, comparisons


def _verdict_md(slug: str, order: list[str], names: dict, summaries: dict, pairs: dict) -> list[str]:
    """The condition's configurations (n, mean ± std, interval) and the tuned configuration's
    paired differences with each baseline, ending in one verdict line."""
    lines = [f"### {slug}", "", f"| configuration | n | best-val mean ± std | {int(LEVEL * 100)}% interval | "
             "last mean ± std | 95% interval |", "|---|---|---|---|---|---|"]
    for lab in order:
        cells = [names[lab], str(summaries[lab][COMPARED[0]].n)]
        for key in COMPARED:
            cells += [mean_std(summaries[lab][key]), interval(summaries[lab][key])]
        lines.append("| " + " | ".join(cells) + " |")
    if "tuned" not in order:
        return lines + ["", f"**{slug}:** no tuned configuration was replicated (no search trial finished).", ""]
    if not pairs:
        return lines + ["", f"**{slug}:** no baseline in this study (add `baselines:` to compare).", ""]
    lines += ["", "| comparison | pairs | Δ best-val mean [95% interval] | Δ last mean [95% interval] | verdict |",
              "|---|---|---|---|---|"]
    sentences = []
    for b, per in pairs.items():
        cells = [f"{names['tuned']} − {names[b]}", str(per[COMPARED[0]][0].n)]
        cells += ["n/a" if not d.n else f"{100 * d.mean:+.2f} {interval(d, signed=True)}" for d, _ in per.values()]
        d = per["best_val"][0]
        cells.append(verdict(d))
        lines.append("| " + " | ".join(cells) + " |")
        sentences.append(f"vs {names[b]}: **{verdict(d)}** (Δ best-val {100 * d.mean:+.2f} points, "
                         f"95% interval {interval(d, signed=True)}, n = {d.n} paired seeds)" if d.n else
                         f"vs {names[b]}: no paired seeds")
    lines += ["", f"**Verdict, {slug}:** {names['tuned']} " + "; ".join(sentences) + ".", ""]
    return lines


def _replication_lines(slug: str, by_label: dict, order: list[str], names: dict) -> list[str]:
    lines = []
    for lab in order:
        for seed, r in sorted(by_label[lab].items(), key=lambda kv: str(kv[0])):
            lines.append(f"| {slug} | {names[lab]} | {seed} | " + " | ".join(pct(r.get(k)) for k in SUMMARY)
                         + f" | {pct(r.get('label_miou'))} |")
    return lines


def learning_epoch(history: list[dict], cls: str, level: float = LEARNED) -> int | None:
    """First epoch whose training IoU of ``cls`` (vs the labels trained on) reaches ``level``."""
    return next((int(h["epoch"]) for h in history if (h.get(f"train_iou/{cls}") or 0) >= level), None)


def _premise_lines(slug: str, histories: dict[str, list[list[dict]]], order: list[str], names: dict) -> list[str]:
    """Per configuration (median over its seeds): the epoch each class is learned, the IoU_el peak
    (epoch, value) and the last IoU_el / IoU_m: does the data show what the methods rely on?"""
    def med(xs):
        xs = sorted(x for x in xs if x is not None)
        return None if not xs else xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    def num(x, f="{:g}"):
        return "never" if x is None else f.format(x)

    lines = []
    for lab in order:
        runs = [h for h in histories.get(lab, []) if h]
        if not runs:
            continue
        classes = [k.split("/", 1)[1] for k in runs[0][-1] if k.startswith("train_iou/")][1:]  # foreground
        cells = []
        for c in classes:
            epochs = [learning_epoch(h, c) for h in runs]
            learned = [e for e in epochs if e is not None]
            cells.append(f"{c} {num(med(learned)) if len(learned) * 2 > len(runs) else 'never'}")
        peaks = [max(h, key=lambda r: r.get("iou_el") or -1) for h in runs]
        lines.append(f"| {slug} | {names[lab]} | {len(runs)} | {', '.join(cells)} | "
                     f"{num(med([p['epoch'] for p in peaks]))} ({num(med([p.get('iou_el') for p in peaks]), '{:.3f}')}) | "
                     f"{num(med([h[-1].get('iou_el') for h in runs]), '{:.3f}')} / {num(med([h[-1].get('iou_m') for h in runs]), '{:.3f}')} | "
                     f"{num(med([h[-1].get('label_miou') for h in runs]), '{:.3f}')} |")
    return lines


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
    return [{"condition": slug, "parameter": k, "importance": v, "complete_trials": len(done)} for k, v in imp.items()]


def _markdown(spec: StudySpec, verdict_md: list[str], replication_md: list[str], premise_md: list[str],
              search_lines: list[str], figs: list[str]) -> str:
    seeds = ", ".join(map(str, spec.final.seeds))
    lines = [f"# Study {spec.name}", "",
             f"Metric for model selection: `{spec.metric.name}` ({spec.metric.goal}, validation); "
             + (f"{spec.search.num_samples} search trials per condition ({spec.search.algorithm}, seed {spec.search.seed}); "
                if spec.search.num_samples else "no search (the trial as configured); ")
             + f"replication: top {spec.final.top_k} configuration(s) and {len(spec.baselines)} baseline(s) x "
             f"{len(spec.final.seeds)} fresh seeds ({seeds}), never used by the search.", "",
             "## Verdict: does the tuned configuration beat its baselines?", "",
             "Test mIoU in %. `best-val`: test mIoU at the epoch of best validation mIoU (chosen on validation "
             "only); `last`: at the last epoch. Each seed is the trial seed and the noise seed, so all "
             "configurations of one seed train on the same noisy labels; Δ = mean over seeds of "
             "(tuned − baseline) with its Student-t 95% interval. Verdict on Δ best-val: better / worse when "
             "the interval excludes 0, otherwise no clear difference.", "", *verdict_md,
             "## Every replicate (test mIoU %)", "",
             "`max-test` is the best test mIoU over epochs: it selects on test, so it is shown only to "
             "compare with the papers' tables and is never used to choose anything.", "",
             "| condition | configuration | seed | best-val | max-test | last | label mIoU |",
             "|---|---|---|---|---|---|---|", *replication_md, "",
             "## Does the data show early learning, then memorisation?", "",
             f"Medians over each configuration's replicates. A class is learned from the first epoch its "
             f"training IoU (vs the labels trained on) reaches {LEARNED}; IoU_el / IoU_m are measured on the "
             "training pixels whose noisy label is wrong (IoU of the prediction with the clean / the noisy "
             "label). Label-correcting methods need classes learned at different epochs and an IoU_el peak "
             "before memorisation (IoU_m rising).", "",
             "| condition | configuration | n | class learned at epoch | IoU_el peak: epoch (value) | "
             "last IoU_el / IoU_m | last label mIoU |", "|---|---|---|---|---|---|---|", *premise_md, "",
             "## Search", "", "| condition | trials | Optuna states | best | parameters |", "|---|---|---|---|---|",
             *search_lines, "", f"Better labels from a condition's best search trial (the trial of `best_<condition>.yaml`): "
             f"`python -m trainables.export <storage>/{spec.name} --condition <condition> --out DIR` (README, export).",
             "", "## Figures", ""]
    lines += [f"![{f}](figures/{f})" for f in figs]
    return "\n".join(lines) + "\n"


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
