"""Read captchas with a trained model: the Python API behind ``captcha-ocr read``.

    from captcha_ocr.reading.reader import CaptchaReader
    reader = CaptchaReader()                      # the shipped model, torch backend
    for reading in reader.read(["226md.png", "2b827.png"]):
        print(reading.text, reading.confidence)

The ONNX backend needs only onnxruntime, numpy and Pillow. An ONNX file from ``captcha-ocr
export`` also carries a graph that prepares images; with ``prepare_in_graph=True`` the reader
decodes images to grey pixels and hands those to it, batched by size.
"""

import base64
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, cast

import numpy as np
from PIL import Image

from captcha_ocr.reading.decoding import restrict
from captcha_ocr.reading.images import DEFAULT_MAX_PIXELS, load_image, read_grey
from captcha_ocr.reading.spec import ModelSpec
from captcha_ocr.reading.weights import ONNX_PREPARATION_KEY, ONNX_SPEC_KEY, model_file

Backend = Literal["torch", "onnx"]
Length = int | tuple[int, int]
ImageSource = str | Path | Image.Image | bytes | np.ndarray
# One thread prepares images ahead of the model: preparing in Python is mostly small numpy and
# Pillow calls that hold the GIL, so a second thread only contends for it (fold-0 test images,
# crnn, ONNX, 2 cores: 701 images/s with one thread, 601 with two).
PREPARE_THREADS = 1
Preparation = Callable[[Sequence[np.ndarray]], np.ndarray]  # grey pixels (H, W) uint8 -> (B, 1, h, w)
GRAPH_PASS_PIXELS = 4_000_000  # most pixels the preparation graph takes in one pass (its memory)
ACCEPTED = "a file path, a Pillow image, the bytes of an image file, or a uint8 / float array (H, W[, C])"


@dataclass(frozen=True)
class Reading:
    """One image's text, the model's probability for it and for each of its characters, and
    whether the probability is below the reader's ``min_confidence``; when asked for, the
    probability of every class (``CaptchaReader.classes``) at each step of the reading."""

    text: str
    confidence: float
    characters: tuple[float, ...] = ()
    rejected: bool = False
    distribution: tuple[tuple[float, ...], ...] | None = None

    def to_dict(self) -> dict:
        """The reading as JSON-ready values, probabilities rounded to 6 digits (the CLI's ``--json``
        and the server's answers)."""
        record = {
            "text": self.text,
            "confidence": round(self.confidence, 6),
            "characters": [round(c, 6) for c in self.characters],
            "rejected": self.rejected,
        }
        if self.distribution is not None:
            record["distribution"] = [[round(p, 6) for p in step] for step in self.distribution]
        return record


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
        min_confidence: Readings with a lower confidence are marked ``rejected`` (still returned).
        max_pixels: Refuse an image of more pixels, checked from its header before it is
            decoded (a decompression bomb); ``None`` leaves only Pillow's own limit.
        prepare_in_graph: Prepare images with the model file's preparation graph (an ONNX file
            from ``captcha-ocr export`` has one), inside onnxruntime, instead of in Python: the
            same arrays, off the GIL, but no faster here (2 cores, ``crnn`` from PNG files: 300
            against 352 images/s; docs/speed.md), so off by default.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: Backend = "torch",
        batch_size: int = 64,
        num_threads: int | None = None,
        min_confidence: float = 0.0,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        prepare_in_graph: bool = False,
    ) -> None:
        if backend not in ("torch", "onnx"):
            raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.batch_size = batch_size
        self.min_confidence = min_confidence
        self.max_pixels = max_pixels
        path = model_file("crnn" if model_path is None else model_path, backend)
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {str(path)!r}")
        self._prepare_pixels: Preparation | None = None  # the model file's own preparation, if used
        if backend == "onnx":
            self._run, spec, self._prepare_pixels = _onnx_runner(path, num_threads, prepare_in_graph)
        else:
            self._run, spec = _torch_runner(path, num_threads)
        self.spec = spec
        self.tokenizer = spec.tokenizer()
        self.decoder = spec.decoder()

    def preprocess(self, image: ImageSource) -> np.ndarray:
        """One image as the model's float input (1, H, W) in [0, 1].

        Raises:
            TypeError: ``image`` is none of the accepted kinds.
            OSError: The file cannot be read as an image.
        """
        source = as_pillow_source(image)
        spec = self.spec
        prepared = load_image(source, spec.height, spec.width, spec.crop_to_text, spec.normalize, self.max_pixels)
        return prepared.astype(np.float32) / 255

    @property
    def prepares_in_graph(self) -> bool:
        """Whether this reader prepares images with the model file's graph (``prepare_in_graph``
        and an ONNX file that has one): ``load`` then only decodes, and ``batch`` prepares
        inside onnxruntime."""
        return self._prepare_pixels is not None

    def load(self, image: ImageSource) -> np.ndarray:
        """What a preparing thread makes of one image: its grey pixels (H, W) uint8 when the
        model's graph prepares images (``prepares_in_graph``), else its prepared input (1, H, W).

        Raises:
            TypeError, OSError: As ``preprocess``.
        """
        if self._prepare_pixels is None:
            return self.preprocess(image)
        return np.asarray(read_grey(as_pillow_source(image), self.max_pixels))

    def batch(self, loaded: Sequence[np.ndarray]) -> np.ndarray:
        """The model's input (B, 1, H, W) float32 from ``load``'s arrays: prepared by the model's
        graph, images of one size per pass, or stacked."""
        if self._prepare_pixels is None:
            return np.stack(loaded)
        return self._prepare_pixels(loaded)

    @property
    def classes(self) -> list[str]:
        """What each column of a reading's ``distribution`` is: "" (no character), then the charset."""
        return ["", *self.tokenizer.charset]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output for a preprocessed batch (B, 1, H, W)."""
        return self._run(batch)

    def lengths(self, length: Length | None = None) -> range:
        """The numbers of characters a reading may have: ``length`` (``n`` or ``(shortest,
        longest)``), by default the range of the labels the model was trained on.

        Raises:
            ValueError: A length below 1, a range the wrong way round, or (for the position and
                joint heads, which have one output per character) more characters than the model has
                positions.
        """
        if length is None:
            return self.tokenizer.lengths
        shortest, longest = (length, length) if isinstance(length, int) else length
        if not 1 <= shortest <= longest:
            raise ValueError(
                f"length must be n >= 1 or (shortest, longest) with 1 <= shortest <= longest, got {length}"
            )
        if self.spec.head != "ctc" and longest > self.tokenizer.max_length:
            raise ValueError(f"length {length}: this model reads at most {self.tokenizer.max_length} characters")
        return range(shortest, longest + 1)

    def decode(
        self, logits: np.ndarray, allow: str | None = None, distribution: bool = False, length: Length | None = None
    ) -> list[Reading]:
        """Readings of the model's output for a batch; see ``read`` for the options."""
        if allow is not None:
            logits = restrict(logits, self.tokenizer.allowed(allow))
        decoded = self.decoder.read_constrained(logits, self.lengths(length))
        steps = self.decoder.distribution(logits).tolist() if distribution else [None] * len(decoded.texts)
        rows = zip(decoded.texts, decoded.confidences, decoded.characters, decoded.fits, steps, strict=True)
        return [
            Reading(
                text,
                float(p),
                tuple(chars),
                bool(p < self.min_confidence or not fits),
                step and tuple(map(tuple, step)),
            )
            for text, p, chars, fits, step in rows
        ]

    def read_arrays(
        self, batch: np.ndarray, allow: str | None = None, distribution: bool = False, length: Length | None = None
    ) -> list[Reading]:
        """Read a preprocessed batch (B, 1, H, W)."""
        return self.decode(self.logits(batch), allow, distribution, length)

    def read(
        self,
        images: Sequence[ImageSource],
        allow: str | None = None,
        distribution: bool = False,
        length: Length | None = None,
    ) -> list[Reading]:
        """Read a sequence of images (see ``ACCEPTED``); raises on the first unreadable one.

        Args:
            images: The images.
            allow: Read only these characters (those of them in the model's charset): the other
                characters' logits are masked before decoding, for this call only.
            distribution: Fill each reading's ``distribution``: the probability of every class at
                each step of the reading.
            length: Read texts of this many characters (``n``, or ``(shortest, longest)``): each
                head reads its most probable text of an allowed length. Default: the lengths of
                the labels the model was trained on. An image that no allowed length fits reads
                as "" and is ``rejected``.

        Raises:
            ValueError: None of ``allow`` is in the model's charset, or ``length`` is not one the
                model can read.
        """
        if isinstance(images, (str, Path, bytes, Image.Image, np.ndarray)) or _is_tensor(images):
            raise TypeError(f"read() takes a list of images, got one {type(images).__name__}: wrap it in a list")
        readings = [reading for _, reading in self.iter_read(images, "raise", allow, distribution, length)]
        return cast(list[Reading], readings)  # on_error="raise": no Exception is yielded

    def iter_read(
        self,
        images: Iterable[ImageSource],
        on_error: Literal["raise", "yield"] = "yield",
        allow: str | None = None,
        distribution: bool = False,
        length: Length | None = None,
    ) -> Iterator[tuple[ImageSource, Reading | Exception]]:
        """Yield ``(source, reading)`` in input order, a batch at a time. With
        ``on_error="yield"`` an unreadable image yields ``(source, error)`` and the rest go on.
        ``allow``, ``distribution`` and ``length`` as for ``read``.

        Images are decoded (and, without a preparation graph, prepared) on ``PREPARE_THREADS``
        thread(s) up to two batches ahead (``load``), so that this overlaps the model's pass
        over the batch before."""
        if allow is not None:
            self.tokenizer.allowed(allow)  # a wrong allow fails before any image is read
        self.lengths(length)  # and so does a wrong length
        pending: list[tuple[ImageSource, np.ndarray | Exception]] = []
        readable = 0  # images in `pending` that decoded
        for source, item in self._prepared(images):
            if isinstance(item, Exception) and on_error == "raise":
                raise item
            pending.append((source, item))
            readable += isinstance(item, np.ndarray)
            if readable == self.batch_size:
                yield from self._flush(pending, allow, distribution, length)
                pending, readable = [], 0
        yield from self._flush(pending, allow, distribution, length)

    def _prepared(self, images: Iterable[ImageSource]) -> Iterator[tuple[ImageSource, np.ndarray | Exception]]:
        with ThreadPoolExecutor(max_workers=PREPARE_THREADS, thread_name_prefix="prepare") as pool:
            ahead: deque[tuple[ImageSource, Future]] = deque()
            for source in images:
                ahead.append((source, pool.submit(self.load, source)))
                if len(ahead) > 2 * self.batch_size:
                    yield _outcome(*ahead.popleft())
            while ahead:
                yield _outcome(*ahead.popleft())

    def _flush(
        self, pending: list, allow: str | None, distribution: bool, length: Length | None
    ) -> Iterator[tuple[ImageSource, Reading | Exception]]:
        arrays = [item for _, item in pending if isinstance(item, np.ndarray)]
        readings = iter(self.read_arrays(self.batch(arrays), allow, distribution, length) if arrays else [])
        for source, item in pending:
            yield source, next(readings) if isinstance(item, np.ndarray) else item


@cache
def shared_reader(model: str | Path, backend: Backend) -> CaptchaReader:
    """One ``CaptchaReader`` per model and backend for the process (``captcha_ocr.read``)."""
    return CaptchaReader(model, backend)


def parse_length(value: object) -> Length | None:
    """A length as the CLI, forms and JSON give it: ``5``, ``"5"``, ``"4-6"`` or ``[4, 6]``; ``None``
    or ``""``: the model's own range.

    Raises:
        ValueError: Anything else, naming the accepted forms.
    """
    accepted = 'a number of characters ("5") or a range ("4-6")'
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"length must be {accepted}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return (value[0], value[1])
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,3}\s*(-\s*\d{1,3}\s*)?", value):
        numbers = [int(n) for n in value.split("-")]
        return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    raise ValueError(f"length must be {accepted}, got {value!r}")


def _outcome(source: ImageSource, future: Future) -> tuple[ImageSource, np.ndarray | Exception]:
    try:
        return source, future.result()
    except Exception as error:  # any failure of one image's decoding must not lose the others
        return source, error


def _is_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "numpy")


def as_pillow_source(image: object) -> str | Path | Image.Image:
    """What ``load_image`` opens: paths and Pillow images as they are, the bytes of an image file
    and arrays (numpy or torch: (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; uint8, or floats
    in [0, 1]) as Pillow images.

    Raises:
        TypeError: Anything else, naming what is accepted.
    """
    if isinstance(image, (str, Path, Image.Image)):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(image)))
    if _is_tensor(image):
        image = image.detach().cpu().numpy()  # type: ignore[attr-defined]  # a torch.Tensor, not imported here
    if isinstance(image, np.ndarray):
        return _array_to_pillow(image)
    raise TypeError(f"cannot read a {type(image).__name__}: pass {ACCEPTED}")


def _array_to_pillow(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise TypeError(f"an image array must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"an image array must hold numbers, got {array.dtype}")
        scale = 255.0 if np.issubdtype(array.dtype, np.floating) else 1.0
        array = (array.astype(np.float64) * scale).clip(0, 255).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _torch_runner(path: Path, num_threads: int | None):
    import torch

    from captcha_ocr.model.checkpoint import load_model

    if num_threads:
        torch.set_num_threads(num_threads)
    model, spec = load_model(path)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run, spec


def _onnx_runner(
    path: Path, num_threads: int | None, prepare_in_graph: bool
) -> tuple[Callable, ModelSpec, Preparation | None]:
    """The network's session as a function of prepared batches, the file's spec, and (when
    ``prepare_in_graph`` and the file has one) its preparation graph as a function: its session,
    about 0.2 s to build, is only built when it is used."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise ImportError("the onnx backend needs onnxruntime: pip install 'captcha_ocr[onnx]'") from error
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for truncated or foreign files
        raise ValueError(f"{path} is not a readable ONNX model ({_first_line(error)})") from error
    metadata = session.get_modelmeta().custom_metadata_map
    if ONNX_SPEC_KEY not in metadata:
        raise ValueError(f"{path} was not exported by captcha-ocr export (no {ONNX_SPEC_KEY} metadata)")
    try:
        spec = ModelSpec.from_dict(json.loads(metadata[ONNX_SPEC_KEY]))
        inputs, outputs = session.get_inputs(), session.get_outputs()
        names = ([i.name for i in inputs], [o.name for o in outputs])
        if names != (["images"], ["logits"]):
            raise ValueError(f"inputs {names[0]} and outputs {names[1]}, expected ['images'] and ['logits']")
        spec.check_graph(inputs[0].shape, outputs[0].shape)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: its spec does not fit its graph ({error})") from error
    preparation = None
    if prepare_in_graph and ONNX_PREPARATION_KEY in metadata:
        try:
            graph = ort.InferenceSession(
                base64.b64decode(metadata[ONNX_PREPARATION_KEY], validate=True),
                options,
                providers=["CPUExecutionProvider"],
            )
            preparation = _graph_preparation(graph, spec)
        except Exception as error:  # not base64, not ONNX, or not a preparation of this input
            raise ValueError(f"{path}: its preparation graph cannot be used ({_first_line(error)})") from error

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"images": batch})[0]

    return run, spec, preparation


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _graph_preparation(session, spec: ModelSpec) -> Preparation:
    """The preparation graph of a model file as a function of grey pixel arrays: one pass per
    image size, the prepared arrays put back in order.

    Raises:
        ValueError: The graph does not map ``pixels`` to images of the spec's input size.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != ["pixels"] or [o.name for o in outputs] != ["images"]:
        raise ValueError("the preparation graph must map 'pixels' to 'images'")
    if outputs[0].shape[1:] != [1, spec.height, spec.width]:
        raise ValueError(
            f"the preparation graph makes {outputs[0].shape[1:]}, the spec takes {[1, spec.height, spec.width]}"
        )

    def prepare(greys: Sequence[np.ndarray]) -> np.ndarray:
        prepared = np.empty((len(greys), 1, spec.height, spec.width), dtype=np.float32)
        by_size: dict[tuple[int, int], list[int]] = {}
        for row, grey in enumerate(greys):
            by_size.setdefault((grey.shape[0], grey.shape[1]), []).append(row)
        for (height, width), rows in by_size.items():
            per_pass = max(1, GRAPH_PASS_PIXELS // (height * width))  # the graph's tensors grow with the pixels
            for start in range(0, len(rows), per_pass):
                part = rows[start : start + per_pass]
                prepared[part] = session.run(["images"], {"pixels": np.stack([greys[row] for row in part])})[0]
        return prepared

    return prepare
