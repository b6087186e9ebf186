"""The package's layout contract. Its layers import only layers below them or their own: reading
< analysis, data < model < training < serving < cli. The reading and analysis packages import
neither torch nor Lightning, nor the packages that do (model, training); only the torch backend of
the reader may import them, inside the function that loads a ``.pt`` file."""

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
    *sorted(PACKAGE.glob("analysis/**/*.py")),
]
TORCH_BACKEND = {("reading/reader.py", "_torch_runner")}  # (module, function) allowed to import torch


# Each module's layer, by the longest prefix of its name; the 0.1 shim sits above everything.
LAYERS = {"captcha_ocr": 0, "captcha_ocr.reading": 0, "captcha_ocr.analysis": 1, "captcha_ocr.data": 1,
          "captcha_ocr.model": 2, "captcha_ocr.training": 3, "captcha_ocr.serving": 4, "captcha_ocr.cli": 5,
          "captcha_ocr.callbacks": 6}  # fmt: skip


def layer(module: str) -> int:
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(prefixes, key=len)]


def imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, name) of each import in a module's source (``module``: its path in the package),
    outside the functions allowed to import torch (``TORCH_BACKEND``)."""
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
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
    return found


def heavy_imports(source: str, module: str) -> list[str]:
    """``line: name`` of each import of a HEAVY module in a module's source, outside the
    functions allowed to."""
    return [f"{line}: {name}" for line, name in imports(source, module)
            if name.split(".")[0] in HEAVY or name.startswith(HEAVY)]  # fmt: skip


def upward_imports(source: str, module: str) -> list[str]:
    """``line: name`` of each import of the package from a higher layer than ``module``'s."""
    own = layer("captcha_ocr." + module.removesuffix(".py").replace("/", "."))
    return [f"{line}: {name}" for line, name in imports(source, module)
            if name.startswith("captcha_ocr") and layer(name) > own]  # fmt: skip


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    assert upward_imports(path.read_text(), str(path.relative_to(PACKAGE))) == []


def test_the_layer_check_finds_an_import_from_above() -> None:
    source = "from captcha_ocr.reading.spec import ModelSpec\n\n\ndef f():\n    from captcha_ocr.cli import main\n"
    assert upward_imports(source, "model/network.py") == ["5: captcha_ocr.cli"]
    assert upward_imports(source, "cli.py") == []


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
