"""Plugins (trainables.plugins): a method from a file outside the package trains one trial through
the single-trial CLI, named in the YAML or with --plugin; --list shows it, the parser validates it,
a misspelling gets the hint; the docs' plugin is the example file that trains; an installed
entry point registers; a plugin that fails to import is one line naming it and the cause."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from trainables import plugins
from trainables import run as run_cli
from trainables.config import load_trial_config
from trainables.data import DATASETS
from trainables.errors import ConfigError
from trainables.methods import METHODS
from trainables.noise import NOISE_KINDS

EXAMPLE = REPO / "examples" / "plugins" / "focal.py"
TINY = {"dataset": {"name": "synthetic", "size": [32, 32], "num_train": 8, "num_val": 4, "num_test": 4},
        "model": {"kwargs": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}},
        "train": {"epochs": 1, "batch_size": 4, "threads": 1}, "seed": 0}


@pytest.fixture
def clean():
    """Registries, imported plugin modules and the loader's memory as before the test."""
    saved = [(r, r.snapshot()) for r in (METHODS, NOISE_KINDS, DATASETS)]
    modules, loaded, path = set(sys.modules), dict(plugins._loaded), list(sys.path)
    eps = None if plugins._entry_points is None else set(plugins._entry_points)
    yield
    for r, snap in saved:
        r.restore(snap)
    for name in set(sys.modules) - modules:  # the plugin modules (files in tmp folders, the example)
        file = str(getattr(sys.modules[name], "__file__", None) or "")
        if file.startswith(tempfile.gettempdir()) or file == str(EXAMPLE):
            del sys.modules[name]
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    plugins._entry_points = eps
    sys.path[:] = path


def test_docs_show_the_example_plugin_verbatim() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text()
    block = re.search(r"## The smallest complete plugin.*?```python\n(.*?)```", docs, re.S).group(1)
    assert block == EXAMPLE.read_text()
    assert len(block.splitlines()) <= 35
    readme = (REPO / "README.md").read_text()
    assert "## Your own method" in readme and "docs/plugins.md" in readme


def test_plugin_file_named_in_the_yaml_trains_a_trial(tmp_path, clean, capsys) -> None:
    elsewhere = tmp_path / "mine"  # a folder outside the package
    elsewhere.mkdir()
    shutil.copy(EXAMPLE, elsewhere / "focal.py")
    cfg = elsewhere / "trial.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": ["./focal.py"], **TINY, "method": {"name": "focal", "gamma": 1.5}}))
    out = tmp_path / "run"
    assert run_cli.main([str(cfg), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and rows[0]["train_loss"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_miou"] is not None
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["plugins"] == [str(elsewhere / "focal.py")]  # absolute: the run re-runs as is
    assert written["method"] == {"name": "focal", "gamma": 1.5}
    assert METHODS.origin("focal") == "focal" and not METHODS.builtin("focal")
    # the written config loads again in a fresh process state (the plugin found through its path)
    plugins._loaded.clear()
    METHODS.unregister("focal")
    del sys.modules["focal"]
    again = load_trial_config(out / "config.yaml")
    assert again.method.name == "focal" and again.method.params.gamma == 1.5


def test_plugin_option_lists_validates_and_hints(tmp_path, clean, capsys) -> None:
    assert run_cli.main(["--plugin", str(EXAMPLE), "--list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "\n  focal  (plugin focal)\n" in out and re.search(r"gamma\s+2\.0\s+float\s+# 0 gives plain", out)
    base = tmp_path / "t.yaml"
    base.write_text(yaml.safe_dump(TINY))
    for value, line in (("method.name=focla", "method.name: unknown method 'focla' (did you mean 'focal'?); allowed: "),
                        ("method.gamma=-1", "method.gamma: got -1")):
        sets = ["method.name=focal", value] if value.startswith("method.gamma") else [value]
        args = [str(base), "--plugin", str(EXAMPLE), "--out", str(tmp_path / "x"), *sum((["--set", s] for s in sets), [])]
        assert run_cli.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {base}: {line}") and "\n" not in err, err
    assert not (tmp_path / "x").exists()


def test_bad_plugin_is_one_line_naming_it_and_the_cause(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from trainables.methods import METHODS\n\nx = torhc.zeros(1)\n")
    res = subprocess.run([sys.executable, "-m", "trainables.run", "--plugin", str(bad), "--list", "methods"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (f"error: --plugin: plugin '{bad}': failed to import: NameError: name 'torhc' is not "
                          "defined (bad.py:3)\n")


def test_bad_plugin_in_a_study_is_one_line(tmp_path, clean, capsys) -> None:
    from study import run as study_run

    (tmp_path / "bad.py").write_text("import no_such_library_xyz\n")
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({"name": "bad", "plugins": ["./bad.py"], "trial": TINY}))
    assert study_run.main([str(space), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"error: {space}: plugins[0]: plugin './bad.py': failed to import: "
                                       "ModuleNotFoundError: No module named 'no_such_library_xyz' (bad.py:1)\n")
    assert study_run.main(["--plugin", str(tmp_path / "bad.py"), "--list"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --plugin: plugin '{tmp_path / 'bad.py'}': failed to import: ")


@pytest.mark.parametrize("source, ref, cause", [
    ("", "./missing.py", "no such file {tmp}/missing.py"),
    ("", "no_such_pkg.methods", "no module named 'no_such_pkg' (install it, add its folder to PYTHONPATH, or name its .py file)"),
    ("def broken(:\n", "./syn.py", "failed to import: SyntaxError: invalid syntax (syn.py:1)"),
    ("from trainables.methods import METHODS, Method\n\n@METHODS.register('mine')\nclass A(Method):\n    pass\n\n"
     "@METHODS.register('ce')\nclass B(Method):\n    pass\n", "./dup.py",
     "register method 'ce': already registered (by trainables.methods.ce); choose another name"),
])
def test_plugin_errors_in_a_yaml_name_the_entry(tmp_path, clean, source, ref, cause) -> None:
    if source:
        (tmp_path / ref[2:]).write_text(source)
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": [ref], **TINY}))
    with pytest.raises(ConfigError) as exc:
        load_trial_config(cfg)
    assert str(exc.value) == f"{cfg}: plugins[0]: plugin '{ref}': {cause.format(tmp=tmp_path)}"
    assert "mine" not in METHODS  # what the failed plugin registered before failing is gone


def test_plugins_key_must_be_a_list_of_names_or_files(tmp_path, clean) -> None:
    cfg = tmp_path / "t.yaml"
    for value, msg in ((3, "plugins: got 3; expected a list of module names or .py files"),
                       (["my-pkg"], "plugins[0]: got 'my-pkg'; a module name is dotted Python identifiers")):
        cfg.write_text(yaml.safe_dump({"plugins": value}))
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(cfg))}: {re.escape(msg)}"):
            load_trial_config(cfg)


def test_installed_entry_point_registers(tmp_path, clean) -> None:
    site = tmp_path / "site"  # a real distribution on sys.path: importlib.metadata finds it
    dist = site / "my_plugin_dist-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin-dist\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[noisyseg.plugins]\nfocal_ep = focal_ep\n")
    shutil.copy(EXAMPLE, site / "focal_ep.py")
    sys.path.insert(0, str(site))
    assert "focal_ep=focal_ep" in plugins.load_entry_points(rescan=True)
    assert "focal" in METHODS and METHODS.origin("focal") == "focal_ep"
    assert plugins.load_entry_points(rescan=True).count("focal_ep=focal_ep") == 1  # loaded once


def test_runtime_env_ships_files_and_uninstalled_packages(tmp_path, clean) -> None:
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "my_methods.py").write_text(EXAMPLE.read_text().replace('"focal"', '"focal_pkg"'))
    sys.path.insert(0, str(tmp_path))
    refs = plugins.load(["my_pkg.my_methods", str(EXAMPLE), "json"])
    assert refs == ["my_pkg.my_methods", str(EXAMPLE), "json"] and {"focal", "focal_pkg"} <= set(METHODS)
    env = plugins.runtime_env(refs)
    assert env == {"py_modules": [str(pkg), str(EXAMPLE)],  # the stdlib's json is on every node already
                   "env_vars": {"NOISYSEG_PLUGINS": "my_pkg.my_methods,focal,json"}}
    assert plugins.runtime_env([]) is None


def test_study_yaml_plugins_validate_and_show_in_the_dry_run(tmp_path, clean, capsys) -> None:
    from study import run as study_run
    from study.spec import load_study

    shutil.copy(EXAMPLE, tmp_path / "focal.py")
    space = tmp_path / "s.yaml"
    body = {"name": "plug", "plugins": ["focal.py"], "search": {"algorithm": "random", "num_samples": 2},
            "scheduler": {"type": "none"}, "parameters": {"method.gamma": {"values": [0.5, 2.0]}},
            "trial": {**TINY, "method": {"name": "focal"}}, "final": {"seeds": [7], "top_k": 0},
            "logging": {"wandb": {"mode": "disabled"}}, "storage": {"path": str(tmp_path / "runs")}}
    space.write_text(yaml.safe_dump(body))
    spec = load_study(space)
    assert spec.plugins == [str(tmp_path / "focal.py")] and spec.to_dict()["plugins"] == spec.plugins
    assert study_run.main([str(space), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  plugins: 1 plugin(s) (focal), 1 shipped to the workers by Ray" in out and "focal | unet" in out
    space.write_text(yaml.safe_dump({**body, "parameters": {"method.gamma": {"values": [0.5, -2.0]}}}))
    assert study_run.main([str(space), "--dry-run"]) == 2
    assert "parameters.method.gamma.values[1]: got -2.0" in capsys.readouterr().err
    assert "plugins" not in load_study(REPO / "search_spaces" / "adele.yaml").to_dict()  # study.yaml as before
