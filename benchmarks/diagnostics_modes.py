"""``train.diagnostics: eval_pass`` vs ``train_pass`` on the quick start's trial (issue 20, item 3):
ADELE's per-class trigger epochs and the main job's paired verdicts under each mode.

    for m in eval_pass train_pass; do
        python -m study.run benchmarks/diagnostics_modes.yaml --set name=diag-$m \\
            --set trial.train.diagnostics=$m --storage runs/diag
    done
    python benchmarks/diagnostics_modes.py runs/diag/diag-eval_pass runs/diag/diag-train_pass

Reads the replicates of each experiment (``<experiment>/main-final``, via ``study.results``) and
prints, per configuration and seed, the epoch (1-based, as the report's figures draw it) at which
ADELE triggered each foreground class under either mode and their largest difference; what
``train_miou`` reads under each mode on ce (which trains identically in both); then per mode
the test mIoU (%) at the best-validation epoch and at the last epoch with the paired differences of
``tuned`` (ADELE) against each baseline and the verdict (``study.stats``, the report's rule).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from study.results import TrialRecord, final_dir, read_trials  # noqa: E402
from study.stats import paired, verdict  # noqa: E402

CONDITION = "main"  # a study without conditions


def by_label(exp: Path) -> dict[str, dict[int, TrialRecord]]:
    """label (tuned, ce, adele_global) -> seed -> the replicate's record."""
    out: dict[str, dict[int, TrialRecord]] = {}
    for t in read_trials(final_dir(exp, CONDITION)):
        if not t.full_budget:
            print(f"{exp.name}: {t.replica['label']} seed {t.replica['seed']} left out: "
                  f"{t.failure or 'not finished'} ({len(t.history)} epochs)")
            continue
        out.setdefault(t.replica["label"], {})[int(t.replica["seed"])] = t
    return out


def divergence(modes: dict[str, dict]) -> list[str]:
    """Per replicate, the last epoch through which both modes trained identically (same training
    loss every epoch so far): a run changes only once ADELE corrects labels after a trigger, so the
    first trigger of each seed is compared on the same training, the later ones on diverged runs."""
    (_, a), (_, b) = modes.items()
    rows = ["| configuration | seed | same training through epoch |", "|---|---|---|"]
    for label in sorted(set(a) & set(b)):
        for seed in sorted(set(a[label]) & set(b[label])):
            ha, hb = a[label][seed].history, b[label][seed].history
            n = min(len(ha), len(hb))
            same = next((i for i in range(n) if ha[i]["train_loss"] != hb[i]["train_loss"]), n)
            rows.append(f"| {label} | {seed} | {same}{' (all)' if same == n else ''} |")
    return rows


def triggers(t: TrialRecord) -> dict[int, int | None]:
    """class index -> 1-based trigger epoch (None: never triggered) at the trial's last epoch."""
    last = t.last
    return {int(k.rsplit("/", 1)[1]): (v + 1 if v >= 0 else None) for k, v in last.items()
            if k.startswith("method/trigger/") and k.rsplit("/", 1)[1].isdigit()}


def compare_triggers(modes: dict[str, dict]) -> tuple[list[str], float]:
    """Rows of the trigger table and the largest |difference| (inf where only one mode triggered)."""
    (a_name, a), (b_name, b) = modes.items()
    rows = [f"| configuration | seed | class | {a_name} | {b_name} | difference |", "|---|---|---|---|---|---|"]
    worst = 0.0
    for label in sorted(set(a) & set(b)):
        for seed in sorted(set(a[label]) & set(b[label])):
            ta, tb = triggers(a[label][seed]), triggers(b[label][seed])
            for c in sorted(set(ta) | set(tb)):
                x, y = ta.get(c), tb.get(c)
                if x is None or y is None:
                    diff = 0.0 if x == y else math.inf
                    shown = "—" if x == y else "one only"
                else:
                    diff, shown = float(y - x), f"{y - x:+d}"
                worst = max(worst, abs(diff))
                cells = ["—" if v is None else v for v in (x, y)]
                rows.append(f"| {label} | {seed} | {c} | {cells[0]} | {cells[1]} | {shown} |")
    return rows, worst


def verdicts(name: str, labels: dict[str, dict[int, TrialRecord]]) -> list[str]:
    rows = [f"{name}:", "| configuration | best-val per seed | last per seed |", "|---|---|---|"]
    for label, seeds in labels.items():
        per_seed = [" / ".join(f"{100 * seeds[s].last[key]:.2f}" for s in sorted(seeds))
                    for key in ("best_val", "last")]
        rows.append(f"| {label} | {per_seed[0]} | {per_seed[1]} |")
    rows += ["| comparison | Δ best-val mean [95%] | verdict | Δ last mean [95%] | verdict |",
             "|---|---|---|---|---|"]
    for base in (b for b in labels if b != "tuned"):
        cells = []
        for key in ("best_val", "last"):
            diff, _ = paired({s: 100 * t.last[key] for s, t in labels["tuned"].items()},
                             {s: 100 * t.last[key] for s, t in labels[base].items()})
            cells.append(f"{diff.mean:+.2f} [{diff.lo:+.2f}, {diff.hi:+.2f}] | {verdict(diff)}")
        rows.append(f"| tuned − {base} | {' | '.join(cells)} |")
    return rows


def same_training(modes: dict[str, dict], label: str = "ce", epochs=(1, 3, 5, 10, 20, 30)) -> list[str]:
    """ce trains the same in both modes (nothing it does reads the diagnostics): its val/test mIoU
    must be equal, and its train_miou under each mode then shows what the two measure of one run."""
    (a_name, a), (b_name, b) = modes.items()
    seeds = sorted(set(a.get(label, {})) & set(b.get(label, {})))
    same = all([r.get("val_miou") for r in a[label][s].history] == [r.get("val_miou") for r in b[label][s].history]
               for s in seeds if len(a[label][s].history) == len(b[label][s].history))
    rows = [f"{label}: val_miou identical in both modes on seeds {seeds}: {same}",
            f"| epoch | train_miou {a_name} | train_miou {b_name} | difference (mean over seeds) |",
            "|---|---|---|---|"]
    for e in epochs:
        xs = [a[label][s].history[e - 1]["train_miou"] for s in seeds if len(a[label][s].history) >= e]
        ys = [b[label][s].history[e - 1]["train_miou"] for s in seeds if len(b[label][s].history) >= e]
        if xs and len(xs) == len(ys):
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            rows.append(f"| {e} | {mx:.3f} | {my:.3f} | {my - mx:+.3f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_pass", type=Path, help="the experiment folder run with train.diagnostics=eval_pass")
    ap.add_argument("train_pass", type=Path, help="the same study run with train.diagnostics=train_pass")
    args = ap.parse_args()
    modes = {"eval_pass": by_label(args.eval_pass), "train_pass": by_label(args.train_pass)}
    rows, worst = compare_triggers(modes)
    print("\n".join(rows))
    print(f"largest trigger difference: {worst:g} epoch(s)\n")
    print("\n".join(divergence(modes)) + "\n")
    print("\n".join(same_training(modes)) + "\n")
    for name, labels in modes.items():
        print("\n".join(verdicts(name, labels)) + "\n")


if __name__ == "__main__":
    main()
