"""Study overhead per trial: what Ray Tune + Optuna + the study's callbacks add to each trial, beyond
the trial's own work.

    .venv/bin/python benchmarks/overhead.py                       # 2 and 8 one-epoch trials
    .venv/bin/python benchmarks/overhead.py --counts 2 8 --wandb offline --rounds 3

For each N in ``--counts`` a fresh ``python -m study.run`` (local Ray, its own storage) runs a search
of N one-epoch trials of a tiny model (synthetic 32x32, 16 training images, depth-1 UNet), one at a
time (``max_concurrent: 1``), random search, no scheduler, no replication. Measured per study: the
driver's wall time, the search phase (first trial start to last trial end, from the trials' results),
the trials' time inside the trainable (the sum of their ``time_total_s``: setup, training, evaluation,
checkpointing) and their own work (the sum of the engine's ``epoch_time_s``: training + evaluation).
Reported:

- per trial, between trials: (search phase - time inside the trainable) / N (scheduling, the
  worker's start or reuse, checkpoint upload, searcher and callbacks);
- per trial, all of it: (search phase - own work) / N (the above + the trial's setup: config, model,
  data hand-over, checkpoint writes);
- marginal per trial: ((wall_b - work_b) - (wall_a - work_a)) / (N_b - N_a) between the smallest and the
  largest N, so the fixed costs (Ray start, the report) cancel;
- the same with the CPU seconds of every process of the study instead of the wall time (the
  driver and its descendants, sampled from /proc: TreeCPU), which the load of a shared machine
  barely changes.

Variants, measured alternately in one run (round 1: A B C D, round 2: D C B A, ...) so that the load
of a shared machine falls on all of them alike: every W&B mode of ``--wandb`` (default: disabled and
offline, the default of a new user without an API key) and, with ``--baseline REV``, the code of git
revision REV (``git archive``, same venv) beside the working tree:

    .venv/bin/python benchmarks/overhead.py --rounds 3                      # W&B disabled vs offline
    .venv/bin/python benchmarks/overhead.py --rounds 3 --baseline a6c4fcf   # and an earlier revision
    .venv/bin/python benchmarks/overhead.py --rounds 3 --baseline A --rev B  # two revisions, not the checkout
    .venv/bin/python benchmarks/overhead.py --rounds 2 --baseline A --baseline-wandb offline --rev B

Reported per variant: the marginal per trial of each round and their median, and per round its
difference from the first variant (W&B's own cost per trial: offline - disabled).

Goal (issue 20): <= 1 s per trial. Wall time: on a shared machine other load inflates every figure;
the host's raw-loop figure (benchmarks/throughput.py host_figure) and the load average are printed
with them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SPEC = """
name: overhead
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: {n}, max_concurrent: 1}}
scheduler: {{type: none}}
resources: {{cpu: 1, gpu: 0}}
parameters:
  train.lr: {{distribution: log_uniform_values, min: 0.001, max: 0.1}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 16, num_val: 4, num_test: 4}}
  noise: [{{kind: morph, rate: 1.0}}]
  model: {{kwargs: {{encoder_depth: 1, decoder_channels: [8]}}}}
  train: {{epochs: 1, batch_size: 8, threads: 1}}
final: {{seeds: [7], top_k: 0}}
logging: {{wandb: {{mode: {wandb}}}}}
"""


def trial_times(exp: Path, code: Path = REPO) -> list[tuple[float, float, float, float]]:
    """(start, end, seconds inside the trainable, seconds of epoch work) of every trial of the study,
    from Ray's trial folders, read by the measured code's study.results (the experiment folder's one
    reader) in a subprocess: this process's modules may be another revision's."""
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from study.results import RESULTS_FILE, read_results
        out = []
        for f in Path(sys.argv[1]).glob(f"**/{RESULTS_FILE}"):
            rows = read_results(f)
            if rows:
                last = rows[-1]
                start = rows[0]["timestamp"] - rows[0]["time_this_iter_s"]
                out.append((start, last["timestamp"], float(last["time_total_s"]),
                            sum(float(r.get("epoch_time_s") or 0) for r in rows)))
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", script, str(exp)], cwd=code, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(code)}, check=True)
    return [tuple(t) for t in json.loads(res.stdout)]


def run_study(n: int, wandb: str, root: Path, code: Path = REPO) -> dict:
    """One study of ``n`` trials with W&B ``wandb``, run by the code at ``code`` (a fresh folder)."""
    root = Path(tempfile.mkdtemp(prefix=f"{wandb}-{n}-", dir=root))
    space = root / f"overhead-{n}.yaml"
    space.write_text(textwrap.dedent(SPEC.format(n=n, wandb=wandb)))
    storage = root / f"runs-{n}"
    # a new user's environment: no W&B variable or key (auto/offline logs offline)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=str(code), NETRC=str(root / "no-netrc"), RAY_USAGE_STATS_ENABLED="0")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "study.run", str(space), "--storage", str(storage), "--quiet"],
                            cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu = TreeCPU(proc.pid)
    while proc.poll() is None:
        cpu.sample()
        time.sleep(0.25)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, *proc.communicate())
    wall, cpu = time.time() - t0, cpu.total()
    if res.returncode != 0:
        raise SystemExit(f"error: the study of {n} trials failed:\n{res.stderr[-3000:]}")
    trials = trial_times(storage / "overhead" / "main", code)
    if len(trials) != n:
        raise SystemExit(f"error: {len(trials)} trial results for {n} trials in {storage}")
    runs = len(list((storage / "overhead" / "wandb").glob("offline-run-*")))
    if wandb == "offline" and runs != n:
        raise SystemExit(f"error: {runs} W&B offline runs for {n} trials in {storage}")
    inside, work = sum(t[2] for t in trials), sum(t[3] for t in trials)
    phase = max(t[1] for t in trials) - min(t[0] for t in trials)
    return {"trials": n, "wall_s": wall, "cpu_s": cpu, "search_phase_s": phase, "inside_trainable_s": inside, "work_s": work,
            "between_trials_per_trial_s": (phase - inside) / n, "overhead_per_trial_s": (phase - work) / n}


class TreeCPU:
    """CPU seconds of a process and all its descendants (the driver, Ray's processes, the trial
    workers, W&B's logging actors and services), sampled from /proc every 0.25 s: a process's last
    sample counts, so a process that lived less than that is missed. Other load barely changes it."""

    def __init__(self, root: int):
        self.root, self.seen = root, {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        parents, cpu = {}, {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(d)] = int(fields[1])
                cpu[int(d)] = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
        tree, grew = {self.root}, True
        while grew:
            new = {pid for pid, ppid in parents.items() if ppid in tree and pid not in tree}
            tree |= new
            grew = bool(new)
        for pid in tree & cpu.keys():
            self.seen[pid] = max(self.seen.get(pid, 0.0), cpu[pid])

    def total(self) -> float:
        return sum(self.seen.values())


def export(rev: str, root: Path) -> Path:
    """The tree of git revision ``rev`` in a folder of ``root`` (``git archive``: the checkout is untouched)."""
    out = root / f"rev-{rev}"
    out.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def marginal(a: dict, b: dict, key: str = "wall_s") -> float:
    return ((b[key] - b["work_s"]) - (a[key] - a["work_s"])) / (b["trials"] - a["trials"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--wandb", nargs="+", default=["disabled", "offline"], choices=["disabled", "offline"])
    ap.add_argument("--baseline", metavar="REV", help="also measure the code of this git revision, alternately")
    ap.add_argument("--baseline-wandb", nargs="+", choices=["disabled", "offline"],
                    help="the W&B modes measured with --baseline's code (default: --wandb's)")
    ap.add_argument("--rev", help="measure the code of this git revision instead of the working tree (which "
                                  "others may be editing on a shared machine)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds (the order reverses each round)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _common import machine
    from throughput import host_figure

    counts = sorted(args.counts)
    host = host_figure()
    print(f"host raw loop {host:.0f} img/CPU-s, load average {os.getloadavg()[0]:.1f}; {machine('cpu')}", flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        codes = {args.rev: export(args.rev, Path(tmp))} if args.rev else {"working tree": REPO}
        if args.baseline:
            codes = {args.baseline: export(args.baseline, Path(tmp)), **codes}
        variants = [(code, mode) for code in codes
                    for mode in (args.baseline_wandb or args.wandb if code == args.baseline else args.wandb)]
        per_round: list[dict[tuple, float]] = []
        cpu_round: list[dict[tuple, float]] = []
        for k in range(args.rounds):
            order = variants if k % 2 == 0 else variants[::-1]
            got: dict[tuple, list[dict]] = {}
            for n in counts:
                for code, mode in order:
                    r = run_study(n, mode, Path(tmp), codes[code])
                    r.update(round=k + 1, code=code, wandb=mode, load=os.getloadavg()[0])
                    rows.append(r)
                    got.setdefault((code, mode), []).append(r)
                    print(f"round {k + 1}, {code}, W&B {mode:8s} {n:3d} trials: driver wall {r['wall_s']:6.1f} s, "
                          f"CPU {r['cpu_s']:6.1f} s, "
                          f"search phase {r['search_phase_s']:6.1f} s, inside the trainable "
                          f"{r['inside_trainable_s']:6.1f} s, epoch work {r['work_s']:5.1f} s -> per trial "
                          f"{r['between_trials_per_trial_s']:.2f} s between trials, {r['overhead_per_trial_s']:.2f} s "
                          f"all overhead; load {r['load']:.1f}", flush=True)
            if len(counts) > 1:
                per_round.append({v: marginal(rs[0], rs[-1]) for v, rs in got.items()})
                cpu_round.append({v: marginal(rs[0], rs[-1], "cpu_s") for v, rs in got.items()})
                first = per_round[-1][variants[0]]
                print(f"round {k + 1}: marginal per trial ({counts[0]} -> {counts[-1]} trials): " + "; ".join(
                    f"{c}, W&B {m}: {per_round[-1][c, m]:.2f} s ({per_round[-1][c, m] - first:+.2f})"
                    for c, m in variants), flush=True)
                print(f"round {k + 1}: marginal CPU per trial (all processes, less the epoch work): " + "; ".join(
                    f"{c}, W&B {m}: {cpu_round[-1][c, m]:.2f} s" for c, m in variants), flush=True)
    summary = {}
    if per_round:
        import statistics

        for c, m in variants:
            vals = [r[c, m] for r in per_round]
            med = statistics.median(vals)
            cpus = [r[c, m] for r in cpu_round]
            summary[f"{c}, W&B {m}"] = {"per_round_s": vals, "median_s": med, "cpu_per_round_s": cpus,
                                         "cpu_median_s": statistics.median(cpus)}
            print(f"marginal per trial, {c}, W&B {m}: median {med:.2f} s over {len(vals)} round(s) "
                  f"({', '.join(f'{v:.2f}' for v in vals)}; goal <= 1 s: {'met' if med <= 1 else 'NOT met'}); "
                  f"CPU median {statistics.median(cpus):.2f} s ({', '.join(f'{v:.2f}' for v in cpus)})")
    print(f"host raw loop {host:.0f} img/CPU-s (before), {host_figure():.0f} (after); load average "
          f"{os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine("cpu"), "host_img_per_cpu_s": host, "rows": rows,
                                               "marginal_per_trial": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
