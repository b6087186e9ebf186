"""The models shipped with the package.

- ``crnn``: ``configs/crnn.yaml``, the joint head (the default), a run of fold 0, seed 0
  (``results/crnn_rerun_cv.csv``): trained on fold 0's training part of captcha_images_v2 only.
- ``fast``: the same recipe with ``configs/ablations/small.yaml`` (a quarter of the convolution
  width), fold 0, seed 0 of its cross-validation (``results/small_cv.csv``).
- ``base``: the same architecture pretrained from scratch on 50,000 captchas drawn by five
  generator libraries (``make base``; charset 0-9 a-z A-Z, 4-8 characters), never an image of
  captcha_images_v2: the start of ``captcha-ocr train`` and ``configs/finetune.yaml``, and a
  reader of such generated captchas by itself.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent
SHIPPED = ("crnn", "fast", "base")
ONNX_SPEC_KEY = "captcha_ocr.spec"  # ONNX metadata entry holding the ModelSpec as JSON
ONNX_PREPARATION_KEY = "captcha_ocr.preparation"  # ... and the preparation graph, a base64 ONNX model


def shipped_file(name: str, backend: str) -> Path:
    """The file of a shipped model for a backend ("torch" or "onnx")."""
    return WEIGHTS_DIR / f"{name}.{'onnx' if backend == 'onnx' else 'pt'}"


def model_file(name_or_path: str | Path, backend: str) -> Path:
    """The file of a shipped model given its name, else the path given."""
    return shipped_file(str(name_or_path), backend) if str(name_or_path) in SHIPPED else Path(name_or_path)


DEFAULT_WEIGHTS = shipped_file("crnn", "torch")  # slim checkpoint of the default model
