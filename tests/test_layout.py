"""The package's layout contract: the reading package and the results / error-analysis modules
import neither torch nor Lightning, nor the packages that do (model, training); only the torch
backend of the reader may import them, inside the function that loads a ``.pt`` file."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT

PACKAGE = ROOT / "captcha_ocr"
HEAVY = ("torch", "lightning", "torchmetrics", "kornia", "captcha_ocr.model", "captcha_ocr.training")
TORCH_FREE = [
    PACKAGE / "__init__.py",
    PACKAGE / "_moved.py",
    *sorted(PACKAGE.glob("reading/**/*.py")),
    PACKAGE / "analysis/results.py",
    PACKAGE / "analysis/errors.py",
]
TORCH_BACKEND = {("reading/reader.py", "_torch_runner")}  # (module, function) allowed to import torch


def heavy_imports(source: str, module: str) -> list[str]:
    """``line: name`` of each import of a HEAVY module in a module's source (``module``: its path
    in the package), outside the functions allowed to."""
    tree = ast.parse(source)
    allowed = {
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and (module, function.name) in TORCH_BACKEND
        for node in ast.walk(function)
    }
    found = []
    for node in ast.walk(tree):
        if node in allowed:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.split(".")[0] in HEAVY or name.startswith(HEAVY)]
    return found


@pytest.mark.parametrize("path", TORCH_FREE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_torch_free_modules_import_no_torch(path: Path) -> None:
    assert heavy_imports(path.read_text(), str(path.relative_to(PACKAGE))) == []


def test_the_contract_check_finds_a_forbidden_import() -> None:
    """The check above can fail: torch at the top, Lightning or the model package inside a
    function, are found; torch inside the reader's torch backend is allowed."""
    source = (
        "import numpy\nfrom torch import nn\n\n\ndef f():\n    import lightning.pytorch as pl\n"
        "    from captcha_ocr.model.network import ModelSpec\n\n\ndef _torch_runner():\n    import torch\n"
    )
    assert heavy_imports(source, "reading/reader.py") == [
        "2: torch",
        "6: lightning.pytorch",
        "7: captcha_ocr.model.network",
    ]
    assert heavy_imports(source, "reading/images.py")[-1] == "11: torch"


def test_the_reading_package_imports_with_torch_and_lightning_blocked() -> None:
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in TORCH_FREE]
    code = (
        "import sys, importlib\n"
        "for name in ('torch', 'lightning', 'torchmetrics', 'kornia'): sys.modules[name] = None\n"
        f"for module in {modules!r}: importlib.import_module(module)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
