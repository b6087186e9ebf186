"""TensorBoard views of what the model gets wrong, and final metrics in the HPARAMS tab."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.loggers import TensorBoardLogger

from captcha_ocr.analysis import ImageResult, confusion_matrix
from captcha_ocr.figures import confusion_figure, worst_images_grid


def tensorboard(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


class ValidationErrorsLogger(pl.Callback):
    """After each validation epoch, log the worst validation images (label → prediction) and the
    character confusion matrix as TensorBoard figures.

    Args:
        num_images: How many of the highest-loss validation images to show.
        every_n_epochs: Draw the figures every this many epochs (and after the last one).
    """

    def __init__(self, num_images: int = 12, every_n_epochs: int = 5) -> None:
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = tensorboard(trainer)
        epoch = trainer.current_epoch + 1
        due = epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs
        if logger is None or trainer.sanity_checking or trainer.global_rank != 0 or not due:
            return
        results, pixels = [], []
        for images, targets in trainer.datamodule.val_dataloader():
            logits = pl_module(images.to(pl_module.device))
            prediction = pl_module.decode(logits)
            losses = pl_module.loss(logits, targets.to(pl_module.device), reduction="none")
            labels = pl_module.tokenizer.decode(targets)
            for i, label in enumerate(labels):
                results.append(
                    ImageResult("", label, prediction.texts[i], float(losses[i]), float(prediction.confidences[i]))
                )
                pixels.append(images[i, 0].cpu().numpy())
        order = sorted(range(len(results)), key=lambda i: results[i].loss, reverse=True)[: self.num_images]
        step = trainer.global_step
        grid = worst_images_grid([results[i] for i in order], [pixels[i] for i in order])
        logger.experiment.add_figure("val/worst_images", grid, step)
        matrix = confusion_matrix(results, pl_module.tokenizer.charset)
        logger.experiment.add_figure("val/confusions", confusion_figure(matrix, pl_module.tokenizer.charset), step)


class HParamsMetrics(pl.Callback):
    """Log the hyper-parameters with the run's final metrics (best val CER, and test metrics
    after ``test``) so that runs can be compared in TensorBoard's HPARAMS tab."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        metrics = {"hp/val_selection": float(checkpoint.best_model_score)} if checkpoint.best_model_score else {}
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


class PredictionWriter(BasePredictionWriter):
    """Write ``predict`` results as CSV: file, text, confidence (and label, loss when known).

    Args:
        output: The CSV file to write.
    """

    def __init__(self, output: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.output = Path(output)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions, batch_indices
    ) -> None:
        files = trainer.datamodule.predict_files
        columns = ["file", "text", "confidence", *(["label", "loss"] if "labels" in predictions[0] else [])]
        rows = []
        for batch in predictions:
            for i, text in enumerate(batch["texts"]):
                row = [text, f"{float(batch['confidences'][i]):.6f}"]
                if "labels" in batch:
                    row += [batch["labels"][i], f"{float(batch['losses'][i]):.6f}"]
                rows.append(row)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            writer.writerows([str(path), *row] for path, row in zip(files, rows, strict=True))
        print(f"wrote {len(rows)} predictions to {self.output}")
