"""Read W&B offline runs back (wandb 0.31 writes no files/config.yaml offline: everything is in the
run's ``.wandb`` transaction log, a LevelDB-style record log of protobuf ``Record`` messages)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7  # file header: b":W&B", magic 0xBEE1, version; record header: crc32, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """Every ``wandb_internal_pb2.Record`` of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, path
    out, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        chunk, pos = data[pos:pos + length], pos + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
        elif kind == 0 and length == 0:  # zero padding to the end of the block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
    parsed = []
    for raw in out:
        rec = pb.Record()
        rec.ParseFromString(raw)
        parsed.append(rec)
    return parsed


def _items(items) -> dict:
    """Record items as a dict; nested keys (an image's fields) become nested dicts."""
    out: dict = {}
    for item in items:
        path = list(item.nested_key) or [item.key]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)
    return out


def read_run(folder: Path) -> dict:
    """{name, tags, config, history: [{key: value}], summary} of one ``offline-run-*`` folder
    (the last run record wins, as the server would see it)."""
    (log,) = list(Path(folder).glob("*.wandb"))
    run: dict = {"name": None, "id": None, "tags": [], "config": {}, "history": [], "summary": {}, "group": None,
                 "job_type": None}
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run["name"], run["id"], run["tags"] = rec.run.display_name, rec.run.run_id, list(rec.run.tags)
            run["group"], run["job_type"] = rec.run.run_group, rec.run.job_type
            run["config"].update(_items(rec.run.config.update))
        elif kind == "config":
            run["config"].update(_items(rec.config.update))
        elif kind == "history":
            run["history"].append(_items(rec.history.item))
        elif kind == "summary":
            run["summary"].update(_items(rec.summary.update))
    run["config"].pop("_wandb", None)
    return run


def read_runs(wandb_dir: Path) -> dict[str, dict]:
    """Every offline run under ``wandb_dir`` by its name."""
    runs = [read_run(f) for f in sorted(Path(wandb_dir).glob("offline-run-*"))]
    return {r["name"]: r for r in runs}


RAY_INTERNALS = {"trial_log_path", "pid", "date", "hostname", "node_ip", "trial_id", "experiment_tag",
                 "experiment_id", "timestamp", "time_total_s", "time_this_iter_s", "config", "done"}


def check_study_runs(exp: Path, study: str, slug: str, searched: dict[str, dict], replicas: dict[str, dict],
                     states: dict[str, str]) -> dict[str, dict]:
    """The W&B offline runs of one condition of a real study, as a W&B user expects them:
    ``searched``: Optuna number -> {dotted key: value} of each search trial; ``replicas``: run name
    suffix (``final-tuned-s1``) -> {"label", "seed"}; ``states``: run name -> complete / pruned / ...
    Returns the runs by name."""
    root = exp / "wandb"
    assert not (root / "wandb").exists() and not list(root.glob("*/wandb")), "one wandb/ level"
    runs = read_runs(root)
    names = {f"{slug}/t{k}" for k in searched} | {f"{slug}/{r}" for r in replicas}
    assert set(runs) == names, sorted(runs)
    trial_keys = {"dataset", "noise", "model", "method", "train", "seed", "noise_seed", "eval_every"}
    for name, run in runs.items():
        config = run["config"]
        assert config["study"] == study and config["condition"] == slug, name
        assert not RAY_INTERNALS & set(config), (name, RAY_INTERNALS & set(config))
        suffix = name.split("/", 1)[1]
        if suffix in replicas:
            assert set(config) == trial_keys | {"study", "condition", "replica"}, (name, sorted(config))
            assert config["replica"] == replicas[suffix]
            assert config["seed"] == config["noise_seed"] == replicas[suffix]["seed"]
        else:
            k = int(suffix[1:])
            assert set(config) == trial_keys | {"study", "condition", "optuna_trial"}, (name, sorted(config))
            assert config["optuna_trial"] == k
            for key, value in searched[k].items():  # the value the trial used, in the nested config
                node = config
                for part in key.split("."):
                    node = node[int(part)] if isinstance(node, list) else node[part]
                assert node == value, (name, key, node, value)
        # the end state in the summary, and as a tag unless complete
        assert run["summary"]["state"] == states[name], (name, run["summary"])
        assert (states[name] in run["tags"]) == (states[name] != "complete"), (name, run["tags"])
        # history: numbers only (and the image panels), never Ray's bookkeeping
        rows = [{k: v for k, v in r.items() if k != "panels"} for r in run["history"]]
        assert rows and all(isinstance(v, (int, float)) for r in rows for v in r.values()), name
        keys = {k for r in rows for k in r}
        assert not RAY_INTERNALS & keys and "epoch" in keys and "val_miou" in keys, sorted(keys)
    return runs
