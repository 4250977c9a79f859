"""Compare methods on one trial config over several seeds: mean ± std of best-val / max-test / last.

    python benchmarks/compare_methods.py examples/synthetic.yaml --seeds 0 1 2 \
        --variant ce method.name=ce --variant adele method.name=adele \
        --variant adele_global method.name=adele method.class_adaptive=false --out runs/compare-morph

Each (variant, seed) runs as its own single-trial CLI process (``--workers`` at a time, one torch
thread each); results already in ``--out`` are reused, so an interrupted comparison resumes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run_one(config: str, overrides: list[str], seed: int, out: Path) -> dict:
    if not (out / "summary.json").exists():
        cmd = [sys.executable, "-m", "trainables.run", config, "--out", str(out), "--quiet",
               "--set", f"seed={seed}", "--set", "train.threads=1", *sum((["--set", o] for o in overrides), [])]
        if (out / "config.yaml").exists():
            cmd.append("--resume")
        subprocess.run(cmd, check=True)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [(v[0], v[1:], s) for v in args.variant for s in args.seeds]
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda j: run_one(args.config, j[1], j[2], args.out / f"{j[0]}-seed{j[2]}"), jobs))
    rows = {}
    for (name, _, _), summary in zip(jobs, results):
        rows.setdefault(name, []).append(summary)
    keys = ("best_val", "max_test", "last", "val_miou", "label_miou")
    lines = [f"| variant | {' | '.join(keys)} |", "|---" * (len(keys) + 1) + "|"]
    for name, summaries in rows.items():
        cells = []
        for k in keys:
            vals = [s[k] for s in summaries if s.get(k) is not None]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{100 * statistics.mean(vals):.1f} ± {100 * sd:.1f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
