"""The model shipped with the package: fold 0 of the default experiment (see the README)."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
DEFAULT_WEIGHTS = WEIGHTS_DIR / "crnn.pt"  # slim checkpoint for the torch backend
DEFAULT_ONNX = WEIGHTS_DIR / "crnn.onnx"  # the same network for the onnx backend
ONNX_SPEC_KEY = "captcha_ocr.spec"  # ONNX metadata entry holding the ModelSpec as JSON
