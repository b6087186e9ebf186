"""What a training epoch costs on this machine, by input size and network width.

    python benchmarks/train_speed.py

Times forward + backward + AdamW step on random batches of 32 (no data loading, which is an
in-memory tensor index here), and batched inference at 64, for the variants that decided the
default design. Prints a Markdown table; seconds per epoch are for the 749 training images of
one fold.
"""

import os
import time

import torch

from captcha_ocr.model.network import CaptchaNet, ModelSpec
from captcha_ocr.reading.tokenizer import DEFAULT_CHARSET

TRAIN_IMAGES = 749  # 1,040 images - 208 test - 83 validation
VARIANTS = [  # (name, height, width, channels, lstm_hidden)
    ("default: 32x128, channels 32-64-128", 32, 128, (32, 64, 128), 128),
    ("full size 50x200", 50, 200, (32, 64, 128), 128),
    ("48x192", 48, 192, (32, 64, 128), 128),
    ("40x160", 40, 160, (32, 64, 128), 128),
    ("small: 32x128, channels 16-32-64", 32, 128, (16, 32, 64), 64),
]


def measure(height: int, width: int, channels: tuple[int, ...], hidden: int) -> tuple[int, float, float]:
    spec = ModelSpec(DEFAULT_CHARSET, 5, 5, height, width, True, "position", channels, ((2, 2), (2, 2), (2, 1)), 1,
                     hidden, 1)  # fmt: skip
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
    for name, height, width, channels, hidden in VARIANTS:
        params, epoch_seconds, inference = measure(height, width, channels, hidden)
        print(f"| {name} | {params / 1e6:.2f} M | {epoch_seconds:.1f} | {inference:.0f} |")


if __name__ == "__main__":
    main()
