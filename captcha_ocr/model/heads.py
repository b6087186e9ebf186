"""The output heads' layers and training losses, under the names of ``reading.spec.HEADS`` (which
gives each head's decoder and output steps), so that the head is chosen once, by name, in the spec.

``position``: one classifier per character position, cross-entropy at every position up to
and including the end class. ``ctc``: one classifier per time step, CTC loss. ``joint``: both
on one sequence, trained together with CTC as an auxiliary loss (the hybrid CTC / attention
recipe of speech recognition); the position head reads, and the CTC head checks the reading.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CTC_BLANK_BIAS = 3.0  # initial logit of the blank (class 0) over the characters' 0


class PositionHead(nn.Module):
    """One learned query and one classifier per character position.

    Each query attends over the sequence to find its character; its own linear layer then
    classifies what it found. Output position ``i`` is the ``i``-th character or the end class.
    """

    def __init__(self, dim: int, max_length: int, num_classes: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(max_length, dim) / dim**0.5)
        self.keys = nn.Linear(dim, dim)
        self.weight = nn.Parameter(torch.randn(max_length, dim, num_classes) / dim**0.5)
        self.bias = nn.Parameter(torch.zeros(max_length, num_classes))

    def forward(self, sequence: Tensor) -> Tensor:
        D = sequence.size(-1)  # sequence: (B, T, D) batch, time steps, features
        scores = torch.einsum("ld,btd->blt", self.queries, self.keys(sequence)) / D**0.5  # (B, L, T)
        context = scores.softmax(dim=-1) @ sequence  # (B, L, D)
        return torch.einsum("bld,ldc->blc", context, self.weight) + self.bias  # (B, L, C)

    @staticmethod
    def loss(logits: Tensor, targets: Tensor, pad_id: int, reduction: str = "mean") -> Tensor:
        """Cross-entropy of logits (B, L, C) against ids (B, L) padded with ``pad_id``, at every
        character and at the one end class after the last; positions past it are ignored.

        Returns:
            The mean over counted positions, or with ``reduction="none"`` per image (B,).
        """
        B, L, C = logits.shape
        lengths = (targets != pad_id).sum(dim=1)  # (B,)
        positions = torch.arange(L, device=targets.device)
        masked = targets.masked_fill(positions > lengths[:, None], -100)  # (B, L)
        losses = F.cross_entropy(logits.reshape(B * L, C), masked.reshape(B * L), ignore_index=-100,
                                 reduction="none").view(B, L)  # fmt: skip
        counted = masked != -100  # (B, L)
        if reduction == "mean":
            return losses.sum() / counted.sum()
        return losses.sum(dim=1) / counted.sum(dim=1)


class CTCHead(nn.Linear):
    """One classifier per time step, trained with CTC (the padding id is the blank).

    It starts blank-first: CTC's easy optimum is all blanks, and from a start near it with a
    strong blank the characters emerge, where from a neutral start they can stay on the plateau.
    """

    def __init__(self, dim: int, max_length: int, num_classes: int) -> None:
        super().__init__(dim, num_classes)  # (B, T, D) -> (B, T, C); max_length: CTC reads any length
        nn.init.zeros_(self.bias)
        nn.init.constant_(self.bias[:1], CTC_BLANK_BIAS)

    @staticmethod
    def loss(logits: Tensor, targets: Tensor, pad_id: int, reduction: str = "mean") -> Tensor:
        """CTC of logits (B, T, C) against ids (B, L) padded with ``pad_id``: the mean over
        images, or with ``reduction="none"`` per image (B,)."""
        lengths = (targets != pad_id).sum(dim=1)  # (B,)
        log_probs = logits.log_softmax(dim=-1).transpose(0, 1)  # (T, B, C)
        input_lengths = torch.full_like(lengths, log_probs.size(0))
        losses = F.ctc_loss(log_probs, targets, input_lengths, lengths, pad_id, reduction="none", zero_infinity=True)
        return losses.mean() if reduction == "mean" else losses


class JointHead(nn.Module):
    """A position head and a CTC head on the same sequence, their logits side by side in time.

    Args:
        dim: Features per time step.
        max_length: Longest label: the position head's outputs.
        num_classes: Characters plus the end class / blank.
        ctc_weight: Weight of the CTC loss added to the position loss.
    """

    def __init__(self, dim: int, max_length: int, num_classes: int, ctc_weight: float = 0.5) -> None:
        super().__init__()
        self.position = PositionHead(dim, max_length, num_classes)
        self.ctc = CTCHead(dim, max_length, num_classes)
        self.max_length = max_length
        self.ctc_weight = ctc_weight

    def forward(self, sequence: Tensor) -> Tensor:
        return torch.cat([self.position(sequence), self.ctc(sequence)], dim=1)  # (B, L + T, C)

    def loss(self, logits: Tensor, targets: Tensor, pad_id: int, reduction: str = "mean") -> Tensor:
        """The position loss of the first ``max_length`` steps plus ``ctc_weight`` times the CTC
        loss of the rest: the mean over the batch, or with ``reduction="none"`` per image (B,)."""
        L = self.max_length
        position = PositionHead.loss(logits[:, :L], targets, pad_id, reduction)
        return position + self.ctc_weight * CTCHead.loss(logits[:, L:], targets, pad_id, reduction)


HEAD_LAYERS: dict[str, type[PositionHead] | type[CTCHead] | type[JointHead]] = {
    "position": PositionHead,
    "ctc": CTCHead,
    "joint": JointHead,
}
