"""What a training epoch costs on this machine, by input size, where the network first
down-samples, and network width.

    python benchmarks/train_speed.py

Times forward + backward + AdamW step on random batches of 32 (no data loading, which is an
in-memory tensor index here), and batched inference at 64, for the variants that decided the
default design. Prints a Markdown table; seconds per epoch are for the 749 training images of
one fold.
"""

import os
import time

import torch

from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.spec import ModelSpec
from captcha_ocr.reading.tokenizer import DEFAULT_CHARSET

TRAIN_IMAGES = 749  # 1,040 images - 208 test - 83 validation
FULL_RESOLUTION_STEM = ((1, 1), ((2, 2), (2, 2), (2, 1)))  # (stem stride, stage strides) before 0.2.0
STRIDED_STEM = ((2, 2), ((1, 1), (2, 2), (2, 1)))  # configs/crnn.yaml: the stem takes the first stride
VARIANTS = [  # (name, height, width, channels, lstm_hidden, strides)
    ("default: 32x128, channels 32-64-128, strided stem", 32, 128, (32, 64, 128), 128, STRIDED_STEM),
    ("the same, stem at full resolution (before 0.2.0)", 32, 128, (32, 64, 128), 128, FULL_RESOLUTION_STEM),
    ("full size 50x200, stem at full resolution", 50, 200, (32, 64, 128), 128, FULL_RESOLUTION_STEM),
    ("small: 32x128, channels 16-32-64, strided stem", 32, 128, (16, 32, 64), 64, STRIDED_STEM),
    ("small, stem at full resolution (before 0.2.0)", 32, 128, (16, 32, 64), 64, FULL_RESOLUTION_STEM),
]


def measure(
    height: int, width: int, channels: tuple[int, ...], hidden: int, strides: tuple
) -> tuple[int, float, float]:
    stem_stride, stage_strides = strides
    spec = ModelSpec(DEFAULT_CHARSET, 5, 5, height, width, True, "joint", channels, stage_strides, 1, hidden, 1,
                     stem_stride=stem_stride)  # fmt: skip
    model = CaptchaNet(spec)
    optimizer = torch.optim.AdamW(model.parameters())
    images = torch.rand(32, 1, height, width)

    def train_step() -> None:
        model(images).logsumexp(-1).mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        train_step()
    start = time.perf_counter()
    for _ in range(10):
        train_step()
    per_image = (time.perf_counter() - start) / (10 * 32)
    model.eval()
    batch = torch.rand(64, 1, height, width)
    with torch.inference_mode():
        model(batch)
        start = time.perf_counter()
        for _ in range(5):
            model(batch)
    inference = 5 * 64 / (time.perf_counter() - start)
    return sum(p.numel() for p in model.parameters()), per_image * TRAIN_IMAGES, inference


def main() -> None:
    print(f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| variant | parameters | s / epoch (train) | inference images/s (batch 64, torch) |")
    print("|---|---|---|---|")
    for name, height, width, channels, hidden, strides in VARIANTS:
        params, epoch_seconds, inference = measure(height, width, channels, hidden, strides)
        print(f"| {name} | {params / 1e6:.2f} M | {epoch_seconds:.1f} | {inference:.0f} |")


if __name__ == "__main__":
    main()
