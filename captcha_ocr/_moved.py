"""Module paths of 0.1, kept importable: ``import captcha_ocr.reader`` gives
``captcha_ocr.reading.reader`` itself, with a ``DeprecationWarning`` that names the new path.
(``captcha_ocr.model`` and ``captcha_ocr.analysis`` are packages now, under their old names.)"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED = {
    "captcha_ocr.reader": "captcha_ocr.reading.reader",
    "captcha_ocr.tokenizer": "captcha_ocr.reading.tokenizer",
    "captcha_ocr.decoding": "captcha_ocr.reading.decoding",
    "captcha_ocr.images": "captcha_ocr.reading.images",
    "captcha_ocr.synth": "captcha_ocr.data.synth",
    "captcha_ocr.checkpoint": "captcha_ocr.model.checkpoint",
    "captcha_ocr.export": "captcha_ocr.model.export",
    "captcha_ocr.heads": "captcha_ocr.model.heads",
    "captcha_ocr.crossval": "captcha_ocr.training.crossval",
    "captcha_ocr.evaluation": "captcha_ocr.training.evaluation",
    "captcha_ocr.system": "captcha_ocr.training.system",
    "captcha_ocr.lightning_cli": "captcha_ocr.training.lightning_cli",
    "captcha_ocr.report": "captcha_ocr.analysis.report",
    "captcha_ocr.figures": "captcha_ocr.analysis.figures",
    "captcha_ocr.perturbations": "captcha_ocr.analysis.perturbations",
    "captcha_ocr.results": "captcha_ocr.analysis.results",
    "captcha_ocr.server": "captcha_ocr.serving.app",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of ``MOVED`` and loads it as the module at its new path."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} has moved to {new}; the old path will be removed in 1.0", DeprecationWarning,
                      stacklevel=2)  # fmt: skip
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The new module is executed already."""


def install_moved_modules() -> None:
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
