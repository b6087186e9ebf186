"""The network: a residual CNN reads columns of the image, a BiLSTM reads them in order, and a head
turns the sequence into characters. Plain PyTorch, trained from scratch."""

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Head = Literal["position", "ctc"]
CTC_BLANK_BIAS = 3.0  # initial logit of the blank (class 0) over the characters' 0


def standardize(images: Tensor, eps: float = 1e-3) -> Tensor:
    """Each image (B, 1, H, W) to zero mean and unit standard deviation, so that a file made
    brighter, darker or flatter (any change ``a * x + b``) gives the network the same input.
    ``eps`` (a quarter of one grey level) keeps a blank image finite."""
    centred = images - images.mean(dim=(1, 2, 3), keepdim=True)
    std = centred.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()  # (B, 1, 1, 1)
    return centred / (std + eps)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != (1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class PositionHead(nn.Module):
    """One learned query and one classifier per character position.

    Each query attends over the sequence to find its character; its own linear layer then
    classifies what it found. Output position ``i`` is the ``i``-th character or padding.
    """

    def __init__(self, dim: int, num_positions: int, num_classes: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_positions, dim) / dim**0.5)
        self.keys = nn.Linear(dim, dim)
        self.weight = nn.Parameter(torch.randn(num_positions, dim, num_classes) / dim**0.5)
        self.bias = nn.Parameter(torch.zeros(num_positions, num_classes))

    def forward(self, sequence: Tensor) -> Tensor:
        D = sequence.size(-1)  # sequence: (B, T, D) batch, time steps, features
        scores = torch.einsum("ld,btd->blt", self.queries, self.keys(sequence)) / D**0.5  # (B, L, T)
        context = scores.softmax(dim=-1) @ sequence  # (B, L, D)
        return torch.einsum("bld,ldc->blc", context, self.weight) + self.bias  # (B, L, C)


class CaptchaNet(nn.Module):
    """Residual CNN + BiLSTM captcha reader.

    Args:
        num_classes: Output classes, padding / blank included.
        max_length: Character positions predicted by the ``position`` head.
        head: ``position``: per-position classifiers (trained with cross-entropy); ``ctc``: one
            classifier per time step (trained with CTC).
        channels: Output channels of each residual stage.
        strides: (height, width) stride of each stage's first block.
        blocks_per_stage: Residual blocks in each stage.
        lstm_hidden: Hidden size of each LSTM direction.
        lstm_layers: Stacked BiLSTM layers.
        flatten_height: Give the LSTM every row of the last feature map (channels x rows
            features per column) instead of their mean over the height.
        input_height: Input height, which fixes the number of rows with ``flatten_height``.
        dropout: Dropout before the LSTM and the head.
    """

    def __init__(
        self,
        num_classes: int,
        max_length: int,
        head: Head = "position",
        channels: Sequence[int] = (32, 64, 128),
        strides: Sequence[tuple[int, int]] = ((2, 2), (2, 2), (2, 1)),
        blocks_per_stage: int = 1,
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        flatten_height: bool = False,
        input_height: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"one stride per stage: {len(channels)} channels, {len(strides)} strides")
        self.flatten_height = flatten_height
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        stages = []
        in_channels = channels[0]
        for out_channels, stride in zip(channels, strides, strict=True):
            blocks = [ResidualBlock(in_channels, out_channels, tuple(stride))]
            blocks += [ResidualBlock(out_channels, out_channels, (1, 1)) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.cnn = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        rows = input_height
        for stride in strides:
            rows = (rows - 1) // stride[0] + 1  # a 3x3 convolution with padding 1 and this stride
        self.rnn = nn.LSTM(
            in_channels * rows if flatten_height else in_channels,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        if head == "position":
            self.head = PositionHead(2 * lstm_hidden, max_length, num_classes)
        else:
            self.head = nn.Linear(2 * lstm_hidden, num_classes)
            # Start blank-first: CTC's easy optimum is all blanks, and a start near it with a
            # strong blank lets the characters emerge from there instead of from noise.
            nn.init.constant_(self.head.bias, 0.0)
            nn.init.constant_(self.head.bias[:1], CTC_BLANK_BIAS)

    def forward(self, images: Tensor) -> Tensor:
        """Map images (B, 1, H, W) in [0, 1] to logits: (B, max_length, C) for the position
        head, (B, T, C) for the CTC head."""
        features = self.cnn(self.stem(standardize(images)))  # (B, D, H', T)
        if self.flatten_height:
            sequence = features.flatten(1, 2).transpose(1, 2)  # (B, T, D * H'): every row of each column
        else:
            sequence = features.mean(dim=2).transpose(1, 2)  # (B, T, D): one step per column
        sequence, _ = self.rnn(self.dropout(sequence))  # (B, T, 2 * lstm_hidden)
        return self.head(self.dropout(sequence))
