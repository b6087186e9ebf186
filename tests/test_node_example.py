"""The Node example (``examples/node/read.mjs``) reads captchas with a shipped ``.onnx`` file alone,
and reads them as the Python reader does. ``make setup`` installs its packages (npm)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captcha_ocr.analysis.perturbations import PERTURBATIONS
from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.reading.weights import shipped_file

from .helpers import ROOT, draw_captcha

EXAMPLE = ROOT / "examples" / "node"
NODE = shutil.which("node")
pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not (EXAMPLE / "node_modules").is_dir(), reason="the example's packages: make setup (npm ci)"),
]


def node_read(model: Path, images: list[Path]) -> tuple[int, list[dict], str]:
    done = subprocess.run(
        [str(NODE), str(EXAMPLE / "read.mjs"), str(model), *map(str, images)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_node_reads_as_python_with_the_shipped_onnx_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sources = [draw_captcha(text, mode="RGB") for text in ("226md", "bx47k", "mn3p8")]
    images = sources + [family(sources[0], "moderate", rng) for family in PERTURBATIONS[::4]]
    modes = ("RGB", "L", "RGBA", "P")  # what PNG files hold: colour, grey, opaque alpha, a palette
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        image.convert(modes[i % len(modes)]).save(paths[-1])
    model = shipped_file("crnn", "onnx")
    code, readings, errors = node_read(model, paths)
    assert code == 0, errors
    python = CaptchaReader(model, backend="onnx").read(paths)
    assert [r["text"] for r in readings] == [r.text for r in python]
    assert [r["file"] for r in readings] == list(map(str, paths))
    assert all(0 < r["confidence"] <= 1 for r in readings)


def test_node_refuses_a_model_file_without_its_preparation(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"\x08\x0a")  # an ONNX ModelProto holding only its IR version
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 10), "white").save(image)
    code, readings, errors = node_read(foreign, [image])
    assert code == 2 and not readings
    assert "captcha-ocr export" in errors
