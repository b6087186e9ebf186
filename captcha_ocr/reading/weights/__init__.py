"""The models shipped with the package: the fold-0, seed-0 models of two cross-validated configs,
each trained on fold 0's training part only.

- ``crnn``: ``configs/crnn.yaml``, the joint head (the default).
- ``fast``: the same with ``configs/ablations/small.yaml``: a quarter of the convolution width.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
SHIPPED = ("crnn", "fast")
ONNX_SPEC_KEY = "captcha_ocr.spec"  # ONNX metadata entry holding the ModelSpec as JSON


def shipped_file(name: str, backend: str) -> Path:
    """The file of a shipped model for a backend ("torch" or "onnx")."""
    return WEIGHTS_DIR / f"{name}.{'onnx' if backend == 'onnx' else 'pt'}"


DEFAULT_WEIGHTS = shipped_file("crnn", "torch")  # slim checkpoint of the default model
