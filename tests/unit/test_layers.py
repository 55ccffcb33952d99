"""The package's layering: the import-linter contract of pyproject.toml holds, fails on an upward import
(naming the offending line), and no module dodges it with a function-local import or grows past 400 lines."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.files import ROOT

PACKAGE = ROOT / "helpers"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.skip(f"{LINT_IMPORTS} not installed; run `make setup`")
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layers_contract_holds():
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_an_upward_import_breaks_the_contract_and_is_named(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    split = tmp_path / "helpers" / "data" / "split.py"
    split.write_text(split.read_text().replace("from helpers.files import atomic_path",
                                               "from helpers.files import atomic_path\nfrom helpers.evaluation import stats"))
    res = lint_imports(tmp_path)
    assert res.returncode != 0 and "0 kept, 1 broken" in res.stdout
    assert "helpers.data.split -> helpers.evaluation.stats" in res.stdout


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_function_local_imports_of_the_package():
    """A function-local `import helpers...` is how a cycle hides; the layers make it unnecessary."""
    found = []
    for path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("helpers"):
                        found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
                    if isinstance(inner, ast.Import) and any(a.name.startswith("helpers") for a in inner.names):
                        found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not found, f"function-local imports of helpers: {found}"


def test_every_module_stays_readable():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines (split them by concept): {long}"
