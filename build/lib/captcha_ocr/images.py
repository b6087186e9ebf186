"""Turning image files of any size and mode into the model's grey-scale input (no torch needed)."""

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def to_grey(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit grey ("L"); transparency is laid over white."""
    if image.mode.startswith("I;16"):  # 16-bit grey: keep the top 8 bits
        values = np.asarray(image, dtype=np.float64) / 257
        return Image.fromarray(values.round().astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):  # 32-bit, range unknown: stretch to 0-255
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255:  # some transparency
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode == "CMYK":
        image = image.convert("RGB")
    return image.convert("L")


def load_image(source: str | Path | Image.Image, height: int, width: int) -> np.ndarray:
    """Read, grey-scale and resize one image.

    Args:
        source: A file path or an already opened Pillow image.
        height: Output height in pixels.
        width: Output width in pixels.

    Returns:
        uint8 array of shape (1, height, width).

    Raises:
        OSError: The file cannot be read or is not a complete image (Pillow's own message).
    """
    if isinstance(source, Image.Image):
        grey = to_grey(source)
    else:
        with Image.open(source) as opened:
            grey = to_grey(opened)
            grey.load()  # decode now, while the file is open; raises on truncated data
    grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    return np.array(grey, dtype=np.uint8)[None]
