"""A reading-only install (``pip install captcha_ocr[onnx]``) reads captchas without torch."""

import subprocess
import venv
from pathlib import Path

import pytest

from .helpers import ROOT, draw_captcha

pytestmark = [pytest.mark.network, pytest.mark.slow]  # installs from the package index


@pytest.fixture(scope="module")
def onnx_only_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the package and its onnx extra, from the package index."""
    folder = tmp_path_factory.mktemp("onnx_only")
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{ROOT}[onnx]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0:
        pytest.fail(f"pip install .[onnx] failed:\n{install.stderr[-3000:]}")
    return folder / "venv" / "bin"


def test_the_onnx_extra_reads_without_torch(onnx_only_env: Path, tmp_path: Path) -> None:
    has_torch = subprocess.run([onnx_only_env / "python", "-c", "import torch"], capture_output=True)
    assert has_torch.returncode != 0, "the onnx extra pulled in torch"
    draw_captcha("226md").save(tmp_path / "226md.png")
    read = subprocess.run(
        [onnx_only_env / "captcha-ocr", "read", str(tmp_path / "226md.png"), "--model", "fast", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr
    assert '"text":' in read.stdout and '"confidence":' in read.stdout


def test_training_commands_name_the_missing_extra(onnx_only_env: Path, tmp_path: Path) -> None:
    for command in (["cv", "--config", "c.yaml", "--data-dir", str(tmp_path)], ["train", str(tmp_path)]):
        result = subprocess.run([onnx_only_env / "captcha-ocr", *command], capture_output=True, text=True)
        assert result.returncode == 2, command
        assert "pip install 'captcha_ocr[train]'" in result.stderr


def test_summarising_results_needs_no_torch(onnx_only_env: Path) -> None:
    table = ROOT / "results" / "crnn_cv.csv"
    result = subprocess.run(
        [onnx_only_env / "captcha-ocr", "cv", "--table", str(table)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "| crnn | 10 |" in result.stdout
