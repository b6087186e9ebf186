"""Training losses of the two heads, on padded target ids."""

import torch
import torch.nn.functional as F
from torch import Tensor


def sequence_loss(
    logits: Tensor, targets: Tensor, head: str, pad_id: int = 0, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Loss of logits against target ids (B, L) padded with ``pad_id``.

    ``position`` head, logits (B, L, C): cross-entropy at every character position and at the
    one end class after the last character; positions past the end carry no information and are
    ignored. ``ctc`` head, logits (B, T, C): CTC with ``pad_id`` as the blank.

    Returns:
        The mean over characters (``position``) or images (``ctc``); with ``reduction="none"``,
        one value per image (B,).
    """
    lengths = (targets != pad_id).sum(dim=1)  # (B,)
    if head == "ctc":
        log_probs = logits.log_softmax(dim=-1).transpose(0, 1)  # (T, B, C)
        input_lengths = torch.full_like(lengths, log_probs.size(0))
        losses = F.ctc_loss(log_probs, targets, input_lengths, lengths, pad_id, reduction="none", zero_infinity=True)
        return losses.mean() if reduction == "mean" else losses
    B, L, C = logits.shape
    positions = torch.arange(L, device=targets.device)
    masked = targets.masked_fill(positions > lengths[:, None], -100)  # (B, L)
    losses = F.cross_entropy(
        logits.reshape(B * L, C), masked.reshape(B * L), ignore_index=-100, reduction="none",
        label_smoothing=label_smoothing,
    ).view(B, L)  # fmt: skip
    counted = masked != -100  # (B, L)
    if reduction == "mean":
        return losses.sum() / counted.sum()
    return losses.sum(dim=1) / counted.sum(dim=1)
