"""Callbacks: TensorBoard views of what the model gets wrong, final metrics in the HPARAMS tab,
random state in checkpoints, and ``predict``'s CSV writer."""

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.loggers import TensorBoardLogger

from captcha_ocr.analysis.errors import confusion_matrix
from captcha_ocr.analysis.figures import confusion_figure, worst_images_grid
from captcha_ocr.analysis.results import write_image_results
from captcha_ocr.training.evaluation import evaluate

if TYPE_CHECKING:
    from captcha_ocr.training.system import CaptchaSystem

log = logging.getLogger(__name__)


def tensorboard(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


class ValidationErrorsLogger(pl.Callback):
    """After each validation epoch, log the worst validation images (label → reading) and the
    character confusion matrix as TensorBoard figures.

    Args:
        num_images: How many of the highest-loss validation images to show.
        every_n_epochs: Draw the figures every this many epochs (and after the last one).
    """

    def __init__(self, num_images: int = 12, every_n_epochs: int = 5) -> None:
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = tensorboard(trainer)
        epoch = trainer.current_epoch + 1
        due = epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs
        if logger is None or trainer.sanity_checking or trainer.global_rank != 0 or not due:
            return
        data, system = trainer.datamodule, cast("CaptchaSystem", pl_module)
        files = data.files("val")
        results = evaluate(system.model, system.tokenizer, data.loader("val"), files)  # all, in this process
        order = sorted(range(len(results)), key=lambda i: results[i].loss, reverse=True)[: self.num_images]
        step = trainer.global_step
        grid = worst_images_grid([results[i] for i in order], [files[i] for i in order])
        logger.experiment.add_figure("val/worst_images", grid, step)
        matrix = confusion_matrix(results, system.tokenizer.charset)
        logger.experiment.add_figure("val/confusions", confusion_figure(matrix, system.tokenizer.charset), step)


class HParamsMetrics(pl.Callback):
    """Log the hyper-parameters with the run's final metrics (best val CER, and test metrics
    after ``test``) so that runs can be compared in TensorBoard's HPARAMS tab."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        metrics = {"hp/val_selection": float(best)} if best else {}
        metrics |= {f"hp/{k}": float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self._log(trainer, pl_module, metrics)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {f"hp/{k}": float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        self._log(trainer, pl_module, metrics)

    @staticmethod
    def _log(trainer: pl.Trainer, pl_module: pl.LightningModule, metrics: dict[str, float]) -> None:
        logger = tensorboard(trainer)
        if logger is not None and metrics:
            params = {k: v for k, v in pl_module.hparams.items() if not k.startswith("_")}
            logger.log_hyperparams(params | dict(trainer.datamodule.hparams), metrics)


class RandomState(pl.Callback):
    """Keeps the random generators' state in every checkpoint and restores it on resume, so that a
    resumed run draws the same batches and augmentations as an uninterrupted one: torch's CPU
    generator (shuffling, and augmentation on CPU), every CUDA generator (augmentation of batches
    on a GPU) and Python's ``random`` (the ``captcha`` generator). numpy is never drawn from."""

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class PredictionWriter(BasePredictionWriter):
    """Write ``predict`` results as CSV (``results.IMAGE_COLUMNS``: file, text,
    confidence, per-character confidences, and label and loss when the images have labels).

    Each process writes the images it read, named through the dataset indices Lightning hands
    over: one process writes ``output``, several write ``<output stem>.rank<N>.csv`` each.

    Args:
        output: The CSV file to write; ``None``: write nothing.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = Path(output) if output else None

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions, batch_indices
    ) -> None:
        if self.output is None:
            return
        files = trainer.datamodule.predict_files
        results = [r for batch in predictions for r in batch]
        indices = [i for batch in batch_indices[0] for i in batch]  # one predict loader
        for result, index in zip(results, indices, strict=True):
            result.file = str(files[index])
        output = self.output
        if trainer.world_size > 1:
            output = output.with_name(f"{output.stem}.rank{trainer.global_rank}{output.suffix}")
        output.parent.mkdir(parents=True, exist_ok=True)
        write_image_results(output, results)
        log.info(f"wrote {len(results)} predictions to {output}")
