"""The LightningCLI of the project: model and data classes, and the sizes linked between them."""

import os
import sys
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.model.checkpoint import check_lightning_checkpoint
from captcha_ocr.training.callbacks import PredictionWriter, RandomState
from captcha_ocr.training.system import PREPARATION, CaptchaSystem


class LastCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` after every epoch. (Lightning's ``save_last`` rewrites it only when
    the monitored best changes, so a resumed run would redo the epochs since then.)"""

    def __init__(self, every_n_epochs: int = 1) -> None:
        super().__init__(filename="last", monitor=None, save_top_k=1, every_n_epochs=every_n_epochs,
                         enable_version_counter=False)  # fmt: skip


class CaptchaCLI(LightningCLI):
    """``fit`` / ``validate`` / ``test`` / ``predict`` a ``CaptchaSystem`` on a ``CaptchaDataModule``.

    The charset, label lengths and input size are set once, on the data, and linked into the model. A
    ``ModelCheckpoint`` keeps the checkpoint with the best validation CER (ties broken by
    validation loss), ``LastCheckpoint`` the last one, ``RandomState`` the generators' state in
    both; ``predict`` writes its CSV through a ``PredictionWriter`` (``--prediction_writer.output``,
    default ``predictions.csv``). ``validate``, ``test`` and ``predict`` without
    ``--ckpt_path`` use the best checkpoint of the latest run of the same config, and say which.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(CaptchaSystem, CaptchaDataModule, **kwargs)

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:  # run=False: the caller passes checkpoints itself
            return
        config = self.config[self.subcommand]
        logger = config.trainer.logger
        logger_args = logger.get("init_args", {}) if logger and not isinstance(logger, bool) else {}
        runs = Path(logger_args.get("save_dir") or "lightning_logs") / (logger_args.get("name") or "lightning_logs")
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            self._resume_latest_run(config, runs)
        if self.subcommand not in ("validate", "test", "predict") or config.get("ckpt_path"):
            return
        found = latest_best_checkpoint(runs)
        if found is None:
            raise FileNotFoundError(
                f"no --ckpt_path given and no best-*.ckpt under {runs}: train first (main.py fit with the same "
                f"config) or pass --ckpt_path"
            )
        print(f"{self.subcommand}: using {found} (the best checkpoint of the latest run)", file=sys.stderr)
        config.ckpt_path = str(found)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads --ckpt_path's hyper-parameters here, first of all: a file that is not
        # a Lightning checkpoint of this project is named in one line before torch.load sees it.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path != "last":
            check_lightning_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    @staticmethod
    def _resume_latest_run(config, runs: Path) -> None:
        """``fit --ckpt_path last``: continue the latest run of this config, in its own folder."""
        candidates = sorted(runs.glob("*/checkpoints/last.ckpt"), key=lambda path: path.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"--ckpt_path last: no last.ckpt under {runs} to resume from")
        config.ckpt_path = str(candidates[-1])
        run_folder = candidates[-1].parents[1]
        if config.trainer.logger and not isinstance(config.trainer.logger, bool):
            config.trainer.logger.init_args.version = run_folder.name  # logs and checkpoints go on there
        print(f"fit: resuming {config.ckpt_path}", file=sys.stderr)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in PREPARATION:
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(RandomState, "random_state")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/selection",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best-{epoch:03d}",
                "checkpoint.save_last": False,  # LastCheckpoint writes last.ckpt after every epoch
                "checkpoint.auto_insert_metric_name": False,
                "prediction_writer.output": "predictions.csv",
            }
        )


def latest_best_checkpoint(runs: Path, run: str = "*") -> Path | None:
    """The ``best-*.ckpt`` of the most recently written run under ``runs`` (of its folders that
    match ``run``: any ``version_*`` by default, or one cross-validation run such as
    ``fold0_seed0``)."""
    candidates = sorted(runs.glob(f"{run}/checkpoints/best-*.ckpt"), key=lambda path: path.stat().st_mtime)
    return candidates[-1] if candidates else None


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
