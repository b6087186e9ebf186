"""The LightningCLI of the project: model and data classes, and the sizes linked between them."""

import os
import sys

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from captcha_ocr.callbacks import PredictionWriter
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.system import CaptchaSystem


class CaptchaCLI(LightningCLI):
    """``fit`` / ``validate`` / ``test`` / ``predict`` a ``CaptchaSystem`` on a ``CaptchaDataModule``.

    The charset, label lengths and input size are set once, on the data, and linked into the model. A
    ``ModelCheckpoint`` keeps the checkpoint with the best validation CER (ties broken by
    validation loss) and the last one; ``predict`` writes its CSV through a ``PredictionWriter``
    (``--prediction_writer.output``).
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(CaptchaSystem, CaptchaDataModule, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in ("charset", "min_length", "max_length", "height", "width", "crop_to_text"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/selection",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best-{epoch:03d}",
                "checkpoint.save_last": True,
                "checkpoint.auto_insert_metric_name": False,
            }
        )


def run() -> None:
    """Run the CLI; a problem with the data, a file or a checkpoint ends it with a one-paragraph
    message and exit code 1 instead of a traceback (``CAPTCHA_OCR_DEBUG=1`` shows the traceback)."""
    try:
        CaptchaCLI()
    except (ValueError, OSError) as error:
        if os.environ.get("CAPTCHA_OCR_DEBUG"):
            raise
        print(f"error: {error}\n(set CAPTCHA_OCR_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
