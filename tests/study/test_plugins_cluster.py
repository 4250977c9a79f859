"""A plugin reaches Ray workers on every node through the job's runtime_env, not through its path.

A real two-node loopback cluster (head + worker, one CPU each, token auth; the fixture of
test_cluster.py), a plugin file in a temporary folder outside the package that registers the method
``probe_ce``, and a study of two concurrent one-epoch trials with it. The driver prints
``[study] ... handed to Ray`` right after ``ray.init`` returned, i.e. once Ray has packaged the
runtime_env's py_modules and uploaded them to the cluster; the test moves the file away at that line.
Both nodes share this machine's disk, so only a file that is gone proves the workers did not read the
path: each trial's method records the module file it was imported from (under Ray's
``runtime_resources``), its node and the time, and the test checks both trials trained with the
plugin method after the move, one on each node.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.study.test_cluster import REPO, cluster, trial_rows, wait_for  # noqa: F401 - cluster: the fixture

PLUGIN = '''
"""Cross-entropy that records, in a Ray worker, which file its module was imported from."""
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from trainables.methods import METHODS, Method


@METHODS.register("probe_ce")
class ProbeCE(Method):
    @dataclass
    class Params:
        log_dir: str = ""  # where each worker writes its record

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        if params.log_dir and os.environ.get("NOISYSEG_PLUGINS"):  # a Ray worker (not the driver's checks)
            import ray

            record = {"file": __file__, "node": ray.get_runtime_context().get_node_id(), "time": time.time()}
            Path(params.log_dir, f"{os.getpid()}.json").write_text(json.dumps(record))
'''

SPEC = """
name: plugtwo
plugins: [plugins/probe_plugin.py]      # relative to this YAML
metric: {{name: best_val_miou, goal: maximize}}
search: {{algorithm: random, seed: 0, num_samples: 2, max_concurrent: 2}}
scheduler: {{type: none}}
resources: {{cpu: 1, gpu: 0}}
trial:
  dataset: {{name: synthetic, size: [32, 32], num_train: 8, num_val: 4, num_test: 4}}
  model: {{kwargs: {{encoder_depth: 3, decoder_channels: [16, 8, 4]}}}}
  method: {{name: probe_ce, log_dir: {log_dir}}}
  train: {{epochs: 1, batch_size: 8, threads: 1}}
parameters:
  train.lr: {{values: [0.01, 0.02]}}
final: {{seeds: [7], top_k: 0}}
logging: {{wandb: {{mode: disabled}}}}
"""


def test_plugin_reaches_workers_on_both_nodes_through_ray(cluster, tmp_path):
    t0 = time.time()
    plugin = tmp_path / "plugins" / "probe_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    log_dir = tmp_path / "records"
    log_dir.mkdir()
    space = tmp_path / "plugtwo.yaml"
    space.write_text(textwrap.dedent(SPEC.format(log_dir=log_dir)))
    storage = tmp_path / "runs"
    log = tmp_path / "study.log"
    proc = subprocess.Popen([sys.executable, "-m", "study.run", str(space), "--address", cluster["address"],
                             "--storage", str(storage), "--quiet"], cwd=REPO, env=cluster["env"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        def handed() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            return "handed to Ray" in log.read_text()

        wait_for(handed, 90, "the driver to hand the plugin to Ray")
        away = tmp_path / "moved-away"
        away.mkdir()
        shutil.move(plugin, away / plugin.name)  # from here on no process can read it at its path
        moved_at = time.time()
        assert proc.wait(timeout=150) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "1 plugin(s) (probe_plugin), 1 shipped to the workers by Ray (runtime_env py_modules: probe_plugin.py)" in text

    rows = trial_rows(storage / "plugtwo" / "main")
    assert len(rows) == 2
    for name, history in rows.items():
        assert history[-1]["epoch"] == 1 and history[-1]["config"]["trial"]["method"]["name"] == "probe_ce", name
    records = [json.loads(p.read_text()) for p in log_dir.glob("*.json")]
    assert len(records) >= 2, records
    assert len({r["node"] for r in records}) == 2, records  # workers of both nodes trained with it
    for r in records:
        assert "runtime_resources" in r["file"] and Path(r["file"]).name == "probe_plugin.py", r
        assert r["time"] > moved_at, "a trial imported the plugin before the file was moved"
    assert not plugin.exists()
    print(f"two-node plugin study: {time.time() - t0:.1f} s")
