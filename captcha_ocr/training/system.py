"""The LightningModule: loss, decoding, metrics and optimisation around ``CaptchaNet``."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor
from torch.optim.lr_scheduler import OneCycleLR
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.text import CharErrorRate

from captcha_ocr.analysis.results import ImageResult
from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.model.transfer import HeadInit, transfer_weights
from captcha_ocr.reading.spec import Head, ModelSpec
from captcha_ocr.reading.tokenizer import DEFAULT_CHARSET
from captcha_ocr.reading.weights import model_file
from captcha_ocr.training.evaluation import evaluate_batch

# What the data decides and the model stores: the text table and how images are prepared.
PREPARATION = ("charset", "min_length", "max_length", "height", "width", "crop_to_text", "normalize")


@dataclass
class Prediction:
    """Decoded model output for a batch."""

    texts: list[str]
    confidences: Tensor  # (B,) probability of the decoded text under greedy decoding


class WholeAccuracy(MeanMetric):
    """Share of captchas read without a single mistake."""

    # MeanMetric's mean over batches, updated from texts instead of values
    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:  # type: ignore[override]
        super().update(torch.tensor([float(p == t) for p, t in zip(preds, targets, strict=True)]))


class CharacterAccuracy(MeanMetric):
    """Share of target characters predicted at their own position."""

    def update(self, preds: Sequence[str], targets: Sequence[str]) -> None:  # type: ignore[override]
        pairs = zip(preds, targets, strict=True)
        correct = torch.tensor([float(sum(a == b for a, b in zip(p, t, strict=False))) for p, t in pairs])
        lengths = torch.tensor([float(len(t)) for t in targets])
        super().update(correct / lengths, weight=lengths)


def text_metrics(prefix: str = "") -> MetricCollection:
    """CER, whole-captcha accuracy and per-character accuracy, keyed ``<prefix>cer`` etc."""
    metrics: dict[str, Metric | MetricCollection] = {
        "cer": CharErrorRate(), "whole_acc": WholeAccuracy(), "char_acc": CharacterAccuracy()
    }  # fmt: skip
    return MetricCollection(metrics, prefix=prefix)


def recipe_optimizer(parameters: Iterable[Tensor]) -> torch.optim.Optimizer:
    """AdamW at the recipe's peak learning rate and weight decay (``configs/crnn.yaml``)."""
    return torch.optim.AdamW(parameters, lr=3e-3, weight_decay=0.05)


class CaptchaSystem(pl.LightningModule):
    """Trains and evaluates a ``CaptchaNet``.

    Args:
        charset: Characters the model reads (linked from the data module).
        min_length: Shortest label (linked from the data module).
        max_length: Longest label (linked from the data module).
        height: Input height the model is trained at (linked from the data module; kept in the
            checkpoint so that inference resizes images the same way).
        width: Input width, likewise.
        crop_to_text: Whether images are cropped to their text before resizing (linked from the
            data module and kept in the checkpoint, like the input size).
        normalize: Whether images are turned into dark ink on an even page first (linked from
            the data module and kept in the checkpoint).
        head: ``position`` (per-position cross-entropy), ``ctc`` (CTC loss) or ``joint`` (both on
            one backbone; the position head reads).
        ctc_weight: The joint head's weight of the CTC loss beside the position loss.
        channels: Output channels of each residual stage.
        stem_stride: (height, width) stride of the stem convolution: (2, 2) spares the network
            every full-resolution feature map, the costliest part of training and reading.
        strides: (height, width) stride of each stage.
        blocks_per_stage: Residual blocks per stage.
        lstm_hidden: Hidden size of each LSTM direction.
        lstm_layers: Stacked BiLSTM layers.
        flatten_height: Give the LSTM every row of the last feature map instead of their mean
            over the height (``configs/ablations/ctc.yaml``).
        dropout: Dropout before the LSTM and the head.
        optimizer: Optimiser class and arguments (default: the recipe's); its ``lr`` is the peak
            learning rate of the one-cycle schedule (warm-up, then cosine decay to ~0 over the run).
        warmup_fraction: Share of the steps spent warming up.
        base: Fine-tune: when fitting starts, copy this model's weights (a ``.pt`` / ``.ckpt``
            file, or a shipped model's name such as ``base``) into the network
            (``model.transfer``); its architecture must be this one's. A run resumed from a
            checkpoint keeps the checkpoint's weights.
        base_head: How the head starts from ``base``: the rows of the characters both charsets
            share copied (``map``) or a fresh head (``reinit``).
    """

    def __init__(
        self,
        charset: str = DEFAULT_CHARSET,
        min_length: int = 5,
        max_length: int = 5,
        height: int = 32,
        width: int = 128,
        crop_to_text: bool = True,
        normalize: bool = True,
        head: Head = "joint",
        ctc_weight: float = 0.5,
        channels: Sequence[int] = (32, 64, 128),
        stem_stride: tuple[int, int] = (2, 2),
        strides: Sequence[tuple[int, int]] = ((1, 1), (2, 2), (2, 1)),
        blocks_per_stage: int = 1,
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        flatten_height: bool = False,
        dropout: float = 0.1,
        optimizer: OptimizerCallable = recipe_optimizer,
        warmup_fraction: float = 0.1,
        base: str | None = None,
        base_head: HeadInit = "map",
    ) -> None:
        super().__init__()
        # The optimiser is left out: as a class it would make the checkpoint need full unpickling
        # (the CLI records it in the run's config.yaml).
        self.save_hyperparameters(ignore=["optimizer"])
        self.model = CaptchaNet(ModelSpec.from_dict(self.hparams), dropout)
        self.tokenizer = self.model.spec.tokenizer()
        self.decoder = self.model.spec.decoder()
        self.optimizer = optimizer
        self.train_metrics = text_metrics("train/")
        self.val_metrics = text_metrics("val/")
        self.test_metrics = text_metrics("test/")
        # Losses as metrics too, so that with several processes they are averaged over all images.
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def loss(self, logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """Loss of logits against padded target ids (B, L); ``reduction="none"`` gives (B,)."""
        return self.model.head.loss(logits, targets, self.tokenizer.pad_id, reduction)

    def decode(self, logits: Tensor) -> Prediction:
        """Decoding of logits into texts of the trained lengths and their confidences, as the reader reads."""
        texts, confidences = self.decoder.decode(logits.detach().float().cpu().numpy(), self.tokenizer.lengths)
        return Prediction(texts, torch.from_numpy(confidences))

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, targets = batch
        logits = self(images)
        loss = self.loss(logits, targets)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(self.decode(logits).texts, self.tokenizer.decode(targets))
        on_step = stage == "train"
        mean_loss = getattr(self, f"{stage}_loss")
        mean_loss(loss.detach(), weight=len(images))
        self.log(f"{stage}/loss", mean_loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(images))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=len(images))
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        # Checkpoints are chosen on val CER; the loss term (well under one character error) only
        # breaks ties, which are frequent once the validation set is read almost perfectly.
        selection = self.val_metrics["val/cer"].compute() + 1e-4 * self.val_loss.compute().clamp(max=10)
        self.log("val/selection", selection)

    def predict_step(self, batch: tuple[Tensor, Tensor] | Tensor, batch_idx: int) -> list[ImageResult]:
        """Per-image results (``evaluation.evaluate_batch``); with targets in the batch, also
        labels and losses."""
        images, targets = batch if isinstance(batch, (tuple, list)) else (batch, None)
        return evaluate_batch(self.model, self.tokenizer, images, targets)

    def setup(self, stage: str) -> None:
        # Before a checkpoint given to fit is restored, so that a resumed run keeps its weights.
        if stage == "fit" and self.hparams.base:
            network, spec = load_model(model_file(self.hparams.base, "torch"))
            transfer_weights(network, spec, self.model, self.model.spec, self.hparams.base_head)

    def on_train_start(self) -> None:
        # A resumed one-cycle schedule keeps the length it was started with; a run of another
        # length would fail once it stepped past it, so stop before the first step instead.
        scheduler = self.lr_schedulers()
        stored_steps, steps = getattr(scheduler, "total_steps", None), int(self.trainer.estimated_stepping_batches)
        if stored_steps is not None and stored_steps != steps:
            raise ValueError(
                f"the checkpoint's one-cycle schedule spans {stored_steps} steps, this run {steps}: resume with "
                f"the max_epochs (and batch size) it was started with"
            )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        stored = checkpoint.get("hyper_parameters", {})
        # The weights only mean something with the text table and input they were trained on.
        for name in PREPARATION:
            if name in stored and stored[name] != self.hparams[name]:
                raise ValueError(
                    f"the checkpoint was trained with {name}={stored[name]!r}, this run has {self.hparams[name]!r}: "
                    f"pass --data.{name} {stored[name]} (or leave it to the config the checkpoint was trained with)"
                )

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optimizer = self.optimizer(self.parameters())
        scheduler = OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=int(self.trainer.estimated_stepping_batches),
            pct_start=self.hparams.warmup_fraction,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
