"""Helpers shared by the tests: drawn captchas, tiny models, the project's paths."""

import random
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.model.checkpoint import save_model
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.spec import ModelSpec
from captcha_ocr.reading.tokenizer import DEFAULT_CHARSET

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")
REAL_DATA = find_data_dir(ROOT)
GENERATED_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # what configs/synthetic.yaml draws from


def draw_captcha(text: str, size: tuple[int, int] = (200, 50), mode: str = "RGBA") -> Image.Image:
    """A captcha-like image: dark text on a light background with a line through it."""
    image = Image.new("L", size, 235)
    draw = ImageDraw.Draw(image)
    draw.text((30, 15), text, fill=20, font_size=24)
    draw.line((10, 35, size[0] - 10, 12), fill=40, width=2)
    return image.convert(mode)


def random_labels(count: int, seed: int = 0, charset: str = DEFAULT_CHARSET, length: int = 5) -> list[str]:
    rng = random.Random(seed)
    labels: set[str] = set()
    while len(labels) < count:
        labels.add("".join(rng.choice(charset) for _ in range(length)))
    return sorted(labels)


def model_spec(**changes) -> ModelSpec:
    """A spec of the default network's widths with the position head and a full-resolution stem (the
    tests' reference network; the recipe's is ``CaptchaSystem()``), with ``changes``."""
    default = ModelSpec(
        charset=DEFAULT_CHARSET,
        min_length=5,
        max_length=5,
        height=32,
        width=128,
        crop_to_text=True,
        head="position",
        channels=(32, 64, 128),
        strides=((2, 2), (2, 2), (2, 1)),
        blocks_per_stage=1,
        lstm_hidden=128,
        lstm_layers=1,
    )
    return replace(default, **changes)


def write_tiny_weights(path: Path, seed: int = 0, spec: ModelSpec | None = None) -> Path:
    """A small untrained network as a weights file: enough to test the plumbing around a model."""
    spec = spec or model_spec(channels=(8, 16, 16), lstm_hidden=16)
    torch.manual_seed(seed)
    save_model(CaptchaNet(spec), spec, path)
    return path
