"""The package's top level: ``CaptchaReader`` and ``read`` without deep paths or torch at import,
and 0.1's module paths still importable with a warning."""

import subprocess
import sys
import warnings

import pytest

import captcha_ocr
from captcha_ocr.reading import reader as reading_reader

from .helpers import ROOT, draw_captcha


def test_the_top_level_imports_no_torch_and_reads_with_the_shipped_model(tmp_path) -> None:
    loaded = subprocess.run([sys.executable, "-c", "import sys, captcha_ocr; captcha_ocr.CaptchaReader; "
                             "print('torch' in sys.modules, 'lightning' in sys.modules)"],
                            capture_output=True, text=True, cwd=ROOT, check=True)  # fmt: skip
    assert loaded.stdout.split() == ["False", "False"]
    image = tmp_path / "226md.png"
    draw_captcha("226md").save(image)
    texts = captcha_ocr.read([image, image], backend="onnx")
    expected = captcha_ocr.CaptchaReader("crnn", backend="onnx").read([image])[0].text
    assert texts == [expected, expected] and len(expected) == 5
    assert captcha_ocr.CaptchaReader is reading_reader.CaptchaReader
    with pytest.raises(AttributeError, match="no attribute 'Reader'"):
        captcha_ocr.Reader  # noqa: B018


@pytest.mark.parametrize(("old", "new"), [("captcha_ocr.reader", "captcha_ocr.reading.reader"),
                                          ("captcha_ocr.tokenizer", "captcha_ocr.reading.tokenizer"),
                                          ("captcha_ocr.synth", "captcha_ocr.data.synth")])  # fmt: skip
def test_old_module_paths_import_the_new_modules_with_a_deprecation_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = __import__(old, fromlist=["_"])
    assert module is sys.modules[new]
    assert any(issubclass(w.category, DeprecationWarning) and f"{old} has moved to {new}" in str(w.message)
               for w in caught)  # fmt: skip
