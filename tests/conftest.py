"""Shared fixtures: small captcha folders drawn by the tests, and the real data set's location."""

import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from captcha_ocr.checkpoint import ModelSpec, save_model
from captcha_ocr.tokenizer import DEFAULT_CHARSET

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha_images_v2"


def draw_captcha(text: str, size: tuple[int, int] = (200, 50), mode: str = "RGBA") -> Image.Image:
    """A captcha-like image: dark text on a light background with a line through it."""
    image = Image.new("L", size, 235)
    draw = ImageDraw.Draw(image)
    draw.text((30, 15), text, fill=20, font_size=24)
    draw.line((10, 35, size[0] - 10, 12), fill=40, width=2)
    return image.convert(mode)


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write one drawn image per label into a new folder and return the folder."""

    def make(labels: Sequence[str], name: str = "images") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for label in labels:
            draw_captcha(label).save(folder / f"{label}.png")
        return folder

    return make


def random_labels(count: int, seed: int = 0, charset: str = DEFAULT_CHARSET, length: int = 5) -> list[str]:
    rng = random.Random(seed)
    labels: set[str] = set()
    while len(labels) < count:
        labels.add("".join(rng.choice(charset) for _ in range(length)))
    return sorted(labels)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"the shared data set is not at {REAL_DATA}")
    return REAL_DATA


def write_tiny_weights(path: Path, seed: int = 0) -> Path:
    """A small untrained network as a weights file: enough to test the plumbing around a model."""
    spec = ModelSpec(
        charset=DEFAULT_CHARSET,
        min_length=5,
        max_length=5,
        height=32,
        width=128,
        crop_to_text=True,
        head="position",
        channels=(8, 16, 16),
        strides=((2, 2), (2, 2), (2, 1)),
        blocks_per_stage=1,
        lstm_hidden=16,
        lstm_layers=1,
    )
    torch.manual_seed(seed)
    save_model(spec.build(), spec, path)
    return path
