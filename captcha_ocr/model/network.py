"""The network: a residual CNN reads columns of the image, a BiLSTM reads them in order, and a head
turns the sequence into characters. Plain PyTorch, trained from scratch."""

import torch.nn.functional as F
from torch import Tensor, nn

from captcha_ocr.model.heads import HEAD_LAYERS, JointHead
from captcha_ocr.reading.spec import ModelSpec


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
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CaptchaNet(nn.Module):
    """Residual CNN + BiLSTM captcha reader, built from a ``ModelSpec``.

    A stem convolution (``stem_stride``) and residual stages (``channels``, the first block of
    each with its (height, width) ``strides``; ``blocks_per_stage`` blocks) turn the image into a
    feature map;
    each of its columns becomes one step of a sequence (the mean over its rows, or with
    ``flatten_height`` all its rows side by side), read by a BiLSTM (``lstm_hidden`` per
    direction, ``lstm_layers``) and turned into characters by the ``head`` (``heads.HEAD_LAYERS``).

    Args:
        spec: Text table, input size and architecture.
        dropout: Dropout before the LSTM and the head.
    """

    def __init__(self, spec: ModelSpec, dropout: float = 0.0) -> None:
        super().__init__()
        channels, strides = spec.channels, spec.strides
        self.spec = spec
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, spec.stem_stride, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        stages = []
        in_channels = channels[0]
        for out_channels, stride in zip(channels, strides, strict=True):
            blocks = [ResidualBlock(in_channels, out_channels, (stride[0], stride[1]))]
            blocks += [ResidualBlock(out_channels, out_channels, (1, 1)) for _ in range(spec.blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.cnn = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        rows, _ = spec.feature_map_size()  # of the last feature map
        self.rnn = nn.LSTM(
            in_channels * rows if spec.flatten_height else in_channels,
            spec.lstm_hidden,
            num_layers=spec.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if spec.lstm_layers > 1 else 0.0,
        )
        layer = HEAD_LAYERS[spec.head]
        options = {"ctc_weight": spec.ctc_weight} if layer is JointHead else {}
        self.head = layer(2 * spec.lstm_hidden, spec.max_length, spec.tokenizer().num_classes, **options)

    def forward(self, images: Tensor) -> Tensor:
        """Map images (B, 1, H, W) in [0, 1] to logits: (B, max_length, C) for the position
        head, (B, T, C) for the CTC head, (B, max_length + T, C) for the joint head."""
        features = self.cnn(self.stem(standardize(images)))  # (B, D, H', T)
        if self.spec.flatten_height:
            sequence = features.flatten(1, 2).transpose(1, 2)  # (B, T, D * H'): every row of each column
        else:
            sequence = features.mean(dim=2).transpose(1, 2)  # (B, T, D): one step per column
        sequence, _ = self.rnn(self.dropout(sequence))  # (B, T, 2 * lstm_hidden)
        return self.head(self.dropout(sequence))
