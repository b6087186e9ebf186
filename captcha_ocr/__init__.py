"""Read text captchas with a residual CNN + BiLSTM trained from scratch (see the README).

    from captcha_ocr import CaptchaReader, read

    read(["226md.png"])                           # ["226md"], with the shipped crnn model
    reader = CaptchaReader("runs/mine/model.onnx", backend="onnx")
    reader.read(["a.png", "b.png"], length=5)     # Reading(text, confidence, characters, ...)

Importing the package loads neither torch nor a model: ``CaptchaReader`` and ``Reading`` come
from ``captcha_ocr.reading.reader`` when first used. Module paths of 0.1 (``captcha_ocr.reader``,
``captcha_ocr.synth``, ...) still import, with a ``DeprecationWarning`` naming the new path
(``captcha_ocr._moved``).
"""

from typing import Any

from captcha_ocr._moved import install_moved_modules

__all__ = ["CaptchaReader", "Reading", "read"]

install_moved_modules()


def __getattr__(name: str) -> object:
    if name in ("CaptchaReader", "Reading"):
        from captcha_ocr.reading import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'captcha_ocr' has no attribute {name!r}")


def read(images: list, model: str = "crnn", backend: str = "torch", **options: Any) -> list[str]:
    """The texts of ``images`` (paths, bytes, Pillow images or arrays) read by ``model`` (a
    shipped name or a model file), one reader per model and backend kept for later calls;
    ``options`` (``allow``, ``length``) as for ``CaptchaReader.read``."""
    from captcha_ocr.reading.reader import shared_reader

    return [reading.text for reading in shared_reader(model, backend).read(images, **options)]
