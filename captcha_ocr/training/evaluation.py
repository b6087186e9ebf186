"""Per-image evaluation: the one path by which ``predict``, the TensorBoard callback,
cross-validation, the report and the notebook turn a network and images into ``ImageResult``
records; and a saved model measured on a part of its own split."""

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from captcha_ocr.analysis.results import ImageResult, read_image_results
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.model.checkpoint import load_model, stored_data_hparams
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.spec import HEADS, ModelSpec
from captcha_ocr.reading.tokenizer import Tokenizer


def evaluate_batch(
    model: CaptchaNet, tokenizer: Tokenizer, images: Tensor, targets: Tensor | None = None, **context
) -> list[ImageResult]:
    """Read images (B, 1, H, W); with target ids (B, L), also each image's label and loss.
    ``file`` is left empty; ``context`` (``fold``, ``seed``, ``config``) is stored in each."""
    logits = model(images)  # (B, S, C)
    scores = logits.detach().float().cpu().numpy()
    decoder = HEADS[model.spec.head].decoder(tokenizer)
    texts, confidences, characters = decoder.read(scores, tokenizer.lengths)  # as the reader reads
    labels, losses = [""] * len(texts), [float("nan")] * len(texts)
    if targets is not None:
        labels = tokenizer.decode(targets)
        losses = model.head.loss(logits, targets.to(logits.device), tokenizer.pad_id, reduction="none").tolist()
    return [
        ImageResult("", label, text, loss, float(confidence), chars, **context)
        for label, text, loss, confidence, chars in zip(labels, texts, losses, confidences, characters, strict=True)
    ]


@torch.inference_mode()
def evaluate(
    model: CaptchaNet,
    tokenizer: Tokenizer,
    batches: Iterable[tuple[Tensor, Tensor]],
    files: Sequence[str | Path],
    **context,
) -> list[ImageResult]:
    """Read labelled ``batches`` (an unshuffled loader, in the order of ``files``) with ``model``
    in eval mode; each result is named after its file."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results = [
        result
        for images, targets in batches
        for result in evaluate_batch(model, tokenizer, images.to(device), targets, **context)
    ]
    model.train(was_training)
    if len(results) != len(files):
        raise ValueError(f"{len(files)} files for {len(results)} images")
    for result, path in zip(results, files, strict=True):
        result.file = Path(path).name
    return results


SPLIT_ARGUMENTS = ("fold", "num_folds", "val_fraction", "split_seed", "label_pattern", "labels_csv", "train_size")


def evaluate_checkpoint(
    path: Path, data_dir: str | Path, part: str, fold: int | None = None
) -> tuple[list[ImageResult], ModelSpec]:
    """Per-image results of a model on one part ("train", "val", "test") of its own split.

    The split (folds, validation share, seeds, label pattern) is the one stored in a Lightning
    checkpoint, so a model is measured on the images it was held out from; a slim weights file
    stores no split and gets the default one. ``fold`` overrides the stored fold.
    """
    model, spec = load_model(path)
    split = {k: v for k, v in stored_data_hparams(path).items() if k in SPLIT_ARGUMENTS}
    if fold is not None:
        split["fold"] = fold
    data = CaptchaDataModule(str(data_dir), spec.charset, spec.min_length, spec.max_length, spec.height, spec.width,
                             crop_to_text=spec.crop_to_text, normalize=spec.normalize, **split)  # fmt: skip
    data.setup("test")
    return evaluate(model, spec.tokenizer(), data.loader(part), data.files(part), fold=data.hparams.fold), spec


def report_results(
    predictions: Path | None = None,
    checkpoint: Path | None = None,
    data_dir: Path | None = None,
    part: str = "test",
    fold: int | None = None,
    charset: str | None = None,
) -> tuple[list[ImageResult], str]:
    """The labelled per-image results a report is made of, and the charset of its confusion
    matrix: read from ``predictions``, or from ``checkpoint`` evaluated on ``part`` of its own
    split of ``data_dir``.

    Raises:
        ValueError, OSError: A model or predictions file that cannot be used, named.
    """
    if checkpoint is not None:
        if data_dir is None:
            raise ValueError(f"{checkpoint}: a checkpoint is evaluated on a folder of images: give data_dir")
        results, spec = evaluate_checkpoint(checkpoint, data_dir, part, fold)
        charset = charset or spec.charset
    elif predictions is not None:
        results = read_image_results(predictions)
        charset = charset or "".join(sorted({c for r in results for c in r.label}))
    else:
        raise ValueError("give a predictions file or a checkpoint")
    if not any(r.label for r in results):
        raise ValueError(f"{predictions or checkpoint}: no labelled images to analyse")
    return results, charset
