"""Per-image evaluation: the one path by which ``predict``, the TensorBoard callback,
cross-validation, the report and the notebook turn a network and images into ``ImageResult``
records."""

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from captcha_ocr.analysis.results import ImageResult
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.tokenizer import Tokenizer


def evaluate_batch(
    model: CaptchaNet, tokenizer: Tokenizer, images: Tensor, targets: Tensor | None = None, **context
) -> list[ImageResult]:
    """Read images (B, 1, H, W); with target ids (B, L), also each image's label and loss.
    ``file`` is left empty; ``context`` (``fold``, ``seed``, ``config``) is stored in each."""
    logits = model(images)  # (B, S, C)
    scores = logits.detach().float().cpu().numpy()
    decoder = model.head.decoder(tokenizer)
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
