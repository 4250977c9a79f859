"""The product as a user gets it: the wheel built from this source (``pip wheel --no-deps
--no-build-isolation``: no network), installed with ``pip install --target`` into a temporary folder
that comes first on PYTHONPATH (so it, not this checkout's editable install, is what runs), and used
from another temporary folder outside the checkout: a smoke study of the shipped ``adele`` by name,
the shipped examples by name, and the ``noisyseg`` console command. The build log holds no
deprecation warning, and the wheel holds every module and every shipped YAML file."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the project's CI)

REPO = Path(__file__).resolve().parents[1]
# what the build reads: the metadata, the readme, the packages and the folders pyproject maps into them
SOURCES = ("pyproject.toml", "README.md", "study", "trainables", "search_spaces", "examples")
# a Python warning category in the backend's output (BuildBackendWarning: ..., SetuptoolsDeprecationWarning: ...)
WARNING = re.compile(r"[A-Za-z]+Warning:|deprecat", re.IGNORECASE)


def setuptools_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def copy_sources(dest: Path) -> Path:
    """The files of the build, without what earlier builds or runs left (build/, *.egg-info, caches):
    a stale build/lib would end up in the wheel, and a build in the checkout would race with others."""
    dest.mkdir()
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def build_wheel(src: Path, out: Path) -> tuple[Path, str]:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-v", "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    (wheel,) = out.glob("noisyseg-*.whl")
    return wheel, log


def warnings_in(log: str) -> list[str]:
    return [line.strip() for line in log.splitlines() if WARNING.search(line)]


def user_env(target: Path, home: Path) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_"))}
    e.update(PYTHONPATH=str(target), WANDB_MODE="disabled", WANDB_DIR=str(home / "wandb"), RAY_DEDUP_LOGS="0")
    return e


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    wheel, log = build_wheel(copy_sources(root / "src"), root / "dist")
    target = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                           "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    home = root / "user"  # the user's folder: nothing of the checkout in it
    home.mkdir()
    return {"root": root, "wheel": wheel, "log": log, "target": target, "home": home, "env": user_env(target, home)}


def run(installed: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=installed["home"], env=installed["env"], capture_output=True, text=True,
                          timeout=timeout)


def test_every_package_and_shipped_folder_is_configured():
    """pyproject lists the packages (two are mapped folders), so a new subpackage must be added
    there: every package setuptools finds, and every folder of YAML files under a mapped one."""
    from setuptools import find_packages

    cfg = setuptools_config()
    listed = set(cfg["packages"])
    missing = set(find_packages(str(REPO), include=["study*", "trainables*"])) - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    for package, folder in cfg["package-dir"].items():
        for d in [REPO / folder, *(p for p in (REPO / folder).rglob("*") if p.is_dir())]:
            if list(d.glob("*.yaml")):
                sub = ".".join([package, *d.relative_to(REPO / folder).parts])
                assert sub in listed and "*.yaml" in cfg["package-data"].get(sub, []), (
                    f"{d.relative_to(REPO)}: add {sub!r} to [tool.setuptools] packages and package-data")


def test_the_wheel_is_complete_and_its_build_warns_of_nothing(installed):
    assert warnings_in(installed["log"]) == []
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    modules = {p.relative_to(REPO).as_posix() for pkg in ("study", "trainables") for p in (REPO / pkg).rglob("*.py")}
    assert modules - names == set()
    cfg = setuptools_config()["package-dir"]
    shipped = {f"{pkg.replace('.', '/')}/{p.relative_to(REPO / folder).as_posix()}"
               for pkg, folder in cfg.items() for p in (REPO / folder).rglob("*.yaml")}
    assert "study/spaces/adele.yaml" in shipped and "trainables/examples/tiny.yaml" in shipped
    assert shipped - names == set()
    assert not [n for n in names if n.split("/")[0] in ("search_spaces", "examples", "tests", "benchmarks")]
    entry = zipfile.ZipFile(installed["wheel"]).read("noisyseg-0.1.0.dist-info/entry_points.txt").decode()
    assert "noisyseg = study.cli:main" in entry


def test_the_warning_check_sees_a_deprecated_metadata_field(tmp_path):
    """Not vacuous: the same build with project.license as a table (setuptools deprecates it) is flagged."""
    src = copy_sources(tmp_path / "src")
    text = (src / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(re.sub(r'(?m)^license = "(.*)"$', r'license = { text = "\1" }', text))
    _, log = build_wheel(src, tmp_path / "dist")
    assert any("project.license" in w and "deprecated" in w for w in warnings_in(log)), log[-3000:]


def test_the_installed_copy_runs_and_finds_its_shipped_files_by_name(installed):
    target = installed["target"]
    proc = run(installed, sys.executable, "-c",
               "import study, trainables; from trainables import shipped; "
               "print(study.__file__); print(trainables.__file__); "
               "print(shipped.resolve('adele', 'study')); print(shipped.resolve('tiny', 'trial')); "
               "print(shipped.resolve('paper/pu_drop30', 'study'))")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [Path(line) for line in proc.stdout.split()]
    assert lines[0] == target / "study" / "__init__.py" and lines[1] == target / "trainables" / "__init__.py"
    assert lines[2:] == [target / "study/spaces/adele.yaml", target / "trainables/examples/tiny.yaml",
                         target / "study/spaces/paper/pu_drop30.yaml"]


def test_the_noisyseg_command(installed):
    script = installed["target"] / "bin" / "noisyseg"  # pip --target puts the console script here
    proc = run(installed, str(script), "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for command in ("study", "trial", "export"):
        assert re.search(rf"^\s+{command}\s+\S", proc.stdout, re.MULTILINE), proc.stdout
    proc = run(installed, str(script), "trial", "tny")  # forwarded to trainables.run: its own one-line error
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: tny: no such config file, and no shipped trial of that name (did you mean 'tiny'?); "
        "shipped: camvid, synthetic, tiny (or give a path to a YAML file)"]


def test_smoke_study_of_the_shipped_adele_from_the_installed_wheel(installed):
    """python -m study.run adele --smoke from the user's folder: the smallest real study (one search
    trial, one replica, one epoch each, no W&B) on a real local Ray, then its report."""
    storage = installed["root"] / "runs"
    proc = run(installed, sys.executable, "-m", "study.run", "adele", "--smoke", "--storage", str(storage),
               "--num-samples", "1", "--set", "final.seeds=[1]", "--set", "baselines={}",
               "--set", "trial.train.epochs=1", "--set", "logging.wandb.mode=disabled", "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    exp = storage / "adele-synthetic-smoke"  # the name of the packaged adele.yaml, with --smoke's suffix
    report = exp / "report"
    for name in ("report.md", "trials.csv", "final.csv", "best_rate-1.0.yaml"):
        assert (report / name).is_file(), name
    assert len((report / "trials.csv").read_text().strip().splitlines()) == 2  # header + the one trial
    assert not (installed["home"] / "runs").exists()  # --storage, not the default runs/ of the folder
