"""Every library that study/, trainables/ or benchmarks/ imports (anywhere in a module: at the top or
inside a function) is a declared dependency of pyproject.toml, not something that only arrives
through another package's requirements. Read from the source with ast; the module -> distribution
map is importlib.metadata.packages_distributions() of this environment."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("study", "trainables", "benchmarks")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def declared() -> set[str]:
    """The normalized distribution names of pyproject.toml's [project] dependencies."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the installed metadata of the same list
        from importlib.metadata import requires

        deps = [r for r in requires("noisyseg") or [] if "extra ==" not in r]
    else:
        deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {normalize(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", d).group()) for d in deps}


def local_modules() -> set[str]:
    """Top-level names that are the project's own: the packages, and the modules of benchmarks/
    (its scripts import each other with benchmarks/ on sys.path)."""
    out = set(SCANNED)
    for folder in SCANNED:
        out |= {p.stem for p in (REPO / folder).glob("*.py")} | {p.name for p in (REPO / folder).iterdir() if p.is_dir()}
    return out


def imported() -> dict[str, set[str]]:
    """Third-party top-level module -> the files (relative to the repository) that import it."""
    local, out = local_modules(), {}
    for folder in SCANNED:
        for f in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text(), str(f))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                        out.setdefault(top, set()).add(str(f.relative_to(REPO)))
    return out


def undeclared(modules: dict[str, set[str]], deps: set[str]) -> list[str]:
    """One line per imported module that no declared distribution provides."""
    provides = packages_distributions()
    problems = []
    for module, files in sorted(modules.items()):
        dists = provides.get(module)
        where = ", ".join(sorted(files)[:3]) + (" ..." if len(files) > 3 else "")
        if not dists:
            problems.append(f"{module} (imported by {where}): not installed here; declare its distribution "
                            "in pyproject.toml [project] dependencies and reinstall")
        elif not {normalize(d) for d in dists} & deps:
            problems.append(f"{module} (imported by {where}): comes from {' / '.join(sorted(set(dists)))}, "
                            "which pyproject.toml [project] dependencies does not list")
    return problems


def test_every_imported_library_is_declared():
    modules = imported()
    # the walk sees imports at the top and inside functions alike (torch: everywhere; ray, pandas,
    # cleanlab and huggingface_hub only inside functions)
    assert {"torch", "yaml", "ray", "optuna", "pandas", "cleanlab", "huggingface_hub", "PIL"} <= set(modules), sorted(modules)
    assert not {"study", "trainables", "_common", "os", "__future__"} & set(modules)
    assert undeclared(modules, declared()) == []


def test_a_missing_declaration_is_named():
    """The check fails, naming the module, its files and its distribution, when a declaration is
    missing (here: PyYAML taken out of the declared set) or the module is installed by nothing."""
    modules = imported()
    problems = undeclared(modules, declared() - {"pyyaml"})
    assert len(problems) == 1 and problems[0].startswith("yaml (imported by ") and "comes from PyYAML" in problems[0]
    assert "study/run.py" in " ".join(sorted(modules["yaml"]))
    (line,) = undeclared({"no_such_module_xyz": {"study/x.py"}}, declared())
    assert line.startswith("no_such_module_xyz (imported by study/x.py): not installed here")
