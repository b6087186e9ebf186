"""Read captchas with a trained model: the Python API behind ``captcha-ocr read``.

    from captcha_ocr.reader import CaptchaReader
    reader = CaptchaReader()                      # the shipped model, torch backend
    for reading in reader.read(["226md.png", "2b827.png"]):
        print(reading.text, reading.confidence)

The ONNX backend needs only onnxruntime, numpy and Pillow.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from captcha_ocr.decoding import greedy_decode
from captcha_ocr.images import load_image
from captcha_ocr.tokenizer import Tokenizer
from captcha_ocr.weights import ONNX_SPEC_KEY, SHIPPED, shipped_file

Backend = Literal["torch", "onnx"]
ImageSource = str | Path | Image.Image


@dataclass(frozen=True)
class Reading:
    """One image's text and the model's probability for it."""

    text: str
    confidence: float


class CaptchaReader:
    """A model loaded once and called on batches of images; safe to share between threads
    (inference keeps no state between calls).

    Args:
        model_path: A Lightning checkpoint or slim ``.pt`` weights file (torch backend), an
            ``.onnx`` file (onnx backend), or the name of a shipped model: ``crnn`` (default,
            most accurate) or ``fast``.
        backend: ``torch`` or ``onnx``.
        batch_size: Images per forward pass.
        num_threads: CPU threads of the backend (default: the backend's own choice).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: Backend = "torch",
        batch_size: int = 64,
        num_threads: int | None = None,
    ) -> None:
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        self.batch_size = batch_size
        name = "crnn" if model_path is None else str(model_path)
        path = shipped_file(name, backend) if name in SHIPPED else Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {str(path)!r}")
        if backend == "onnx":
            self._run, spec = _onnx_runner(path, num_threads)
        else:
            self._run, spec = _torch_runner(path, num_threads)
        self.tokenizer = Tokenizer(spec["charset"], spec["min_length"], spec["max_length"])
        self.head = spec["head"]
        self.height, self.width = spec["height"], spec["width"]

    def preprocess(self, image: ImageSource) -> np.ndarray:
        """One image as the model's float input (1, H, W) in [0, 1]."""
        return load_image(image, self.height, self.width).astype(np.float32) / 255

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output for a preprocessed batch (B, 1, H, W)."""
        return self._run(batch)

    def read_arrays(self, batch: np.ndarray) -> list[Reading]:
        texts, confidences = greedy_decode(self.logits(batch), self.tokenizer, self.head)
        return [Reading(t, float(c)) for t, c in zip(texts, confidences, strict=True)]

    def read(self, images: Sequence[ImageSource]) -> list[Reading]:
        """Read images (paths or Pillow images); raises ``OSError`` on the first unreadable one."""
        return [reading for _, reading in self.iter_read(images, on_error="raise")]

    def iter_read(
        self, images: Iterable[ImageSource], on_error: Literal["raise", "yield"] = "yield"
    ) -> Iterator[tuple[ImageSource, Reading | Exception]]:
        """Yield ``(source, reading)`` in input order, a batch at a time. With
        ``on_error="yield"`` an unreadable image yields ``(source, error)`` and the rest go on."""
        pending: list[tuple[ImageSource, np.ndarray | Exception]] = []
        readable = 0  # images in `pending` that decoded
        for source in images:
            try:
                pending.append((source, self.preprocess(source)))
                readable += 1
            except (OSError, ValueError) as error:
                if on_error == "raise":
                    raise
                pending.append((source, error))
            if readable == self.batch_size:
                yield from self._flush(pending)
                pending, readable = [], 0
        yield from self._flush(pending)

    def _flush(self, pending: list) -> Iterator[tuple[ImageSource, Reading | Exception]]:
        arrays = [item for _, item in pending if isinstance(item, np.ndarray)]
        readings = iter(self.read_arrays(np.stack(arrays)) if arrays else [])
        for source, item in pending:
            yield source, next(readings) if isinstance(item, np.ndarray) else item


def _torch_runner(path: Path, num_threads: int | None):
    import torch

    from captcha_ocr.checkpoint import load_model

    if num_threads:
        torch.set_num_threads(num_threads)
    model, spec = load_model(path)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run, spec.to_dict()


def _onnx_runner(path: Path, num_threads: int | None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("the onnx backend needs onnxruntime: pip install 'captcha_ocr[onnx]'") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    if ONNX_SPEC_KEY not in metadata:
        raise ValueError(f"{path} was not exported by captcha-ocr export (no {ONNX_SPEC_KEY} metadata)")

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"images": batch})[0]

    return run, json.loads(metadata[ONNX_SPEC_KEY])
