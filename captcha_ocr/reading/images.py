"""Turning image files of any size and mode into the model's grey-scale input (no torch needed).

``load_image`` is the one preprocessing function: the training data set, the torch reader and
the ONNX reader all call it, so a model always sees its input prepared the same way. It makes
the page even and the ink dark (``normalize_page``), finds the text (``text_box``) and resizes;
what is left of brightness and contrast the network standardises itself (``CaptchaNet``).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageFilter, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GREY_LEVELS = np.arange(256, dtype=np.float64)
WORKING_HEIGHT = 32  # the page is estimated on a copy this high (strokes are 2-4 px there)
DEFAULT_MAX_PIXELS = 4_000_000  # the reader's, the CLI's and the server's default limit per image


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a file with an image suffix (the suffixes the project reads)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (or a link to one): a FIFO, a socket, a
    device, a folder, a broken or looping link, nothing; ``None`` for a regular file. Reading
    anything else could block forever (a FIFO) or mean nothing."""
    if path.is_file():
        return None
    if path.is_symlink():
        return "a broken or looping link"
    if path.is_dir():
        return "a folder"
    if path.is_fifo():
        return "a FIFO"
    if path.is_socket():
        return "a socket"
    if path.is_block_device() or path.is_char_device():
        return "a device"
    return "missing"


def check_pixels(image: Image.Image, max_pixels: int | None) -> None:
    """Refuse an opened (not yet decoded) image of more than ``max_pixels`` pixels.

    Raises:
        OSError: Naming its size and the limit.
    """
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise OSError(f"image of {width} x {height} pixels, over the limit of {max_pixels} (a decompression bomb?)")


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
    if image.mode == "RGBA" and cast(tuple[int, int], image.getchannel("A").getextrema())[0] < 255:  # some transparency
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode == "CMYK":
        image = image.convert("RGB")
    return image.convert("L")


def otsu_threshold(histogram: Sequence[int] | np.ndarray) -> int:
    """The grey level that best splits an image's pixels into two classes (Otsu's method):
    pixels at or below it are one class, above it the other.

    Args:
        histogram: Pixel count of each of the 256 grey levels (``Image.histogram()`` of an "L" image).
    """
    counts = np.asarray(histogram, dtype=np.float64)  # (256,)
    weight_low = counts.cumsum()  # pixels at or below each level
    sum_low = (counts * GREY_LEVELS).cumsum()
    total, total_sum = weight_low[-1], sum_low[-1]
    # Between-class variance w_low * w_high * (mean_low - mean_high)^2, rearranged to one division.
    spread = (sum_low * total - weight_low * total_sum) ** 2
    weights = weight_low * (total - weight_low)
    between = np.divide(spread, weights, out=np.zeros(256), where=weights > 0)
    return int(between.argmax())


def _max_filter(values: np.ndarray, size: int) -> np.ndarray:
    """Grey-scale dilation of a 2-D array by a ``size`` x ``size`` square, edges repeated: per
    axis, the maximum over windows of 2, 4, 8, ... is built by doubling, then the rest added."""
    half = size // 2
    for _ in range(2):  # rows, then (transposed) columns
        n = values.shape[1]
        # edges repeated (np.pad's "edge" mode, at a third of its cost on these small arrays)
        window = np.concatenate([values[:, :1].repeat(half, 1), values, values[:, -1:].repeat(size - 1 - half, 1)], 1)
        covered = 1  # window[:, i] = the maximum of the padded row over [i, i + covered)
        while 2 * covered <= size:
            window = np.maximum(window[:, :-covered], window[:, covered:])
            covered *= 2
        # the window of `size` = the first `covered` values and the last `covered` values of it
        values = np.maximum(window[:, :n], window[:, size - covered : size - covered + n]).T
    return values


def normalize_page(grey: Image.Image) -> Image.Image:
    """Dark text on an evenly white page, whatever the polarity and the lighting of the file.

    Polarity: the image less a heavy blur of itself (so that shading and gradients cancel) is
    split by Otsu's threshold; the ink is the smaller class, and when that class is the lighter
    one the image is inverted. Illumination: the page is estimated by a grey-scale closing (a
    maximum, then a minimum, over a square wider than a stroke) of a copy ``WORKING_HEIGHT``
    pixels high, and the image is divided by it, so that a shadow, a gradient or a dim side
    leaves the page at 255 and the ink as dark as it is against its own surroundings.

    Args:
        grey: An 8-bit grey ("L") image.

    Returns:
        An "L" image of the same size.
    """
    W, H = grey.size
    small = grey
    if H > WORKING_HEIGHT:
        small = grey.resize((max(1, round(W * WORKING_HEIGHT / H)), WORKING_HEIGHT), Image.Resampling.BILINEAR)
    trend = np.asarray(small.filter(ImageFilter.GaussianBlur(small.height / 4)), dtype=np.int16)
    detail = ((np.asarray(small, dtype=np.int16) - trend) // 2 + 128).astype(np.uint8)  # (h, w): page ~128
    histogram = np.bincount(detail.ravel(), minlength=256)
    if 2 * histogram[: otsu_threshold(histogram) + 1].sum() > detail.size:  # the larger class is dark: the page
        grey, small = ImageOps.invert(grey), ImageOps.invert(small)
    size = 2 * max(1, small.height // 8) + 1  # 9 px at the working height
    closed = -_max_filter(-_max_filter(np.asarray(small, dtype=np.int16), size), size)  # strokes filled with page
    page = Image.fromarray(closed.astype(np.uint8)).filter(ImageFilter.BoxBlur(size // 2))
    if page.size != (W, H):
        page = page.resize((W, H), Image.Resampling.BILINEAR)
    flat = np.asarray(grey, dtype=np.float32) / np.maximum(np.asarray(page, dtype=np.float32), 1.0)  # (H, W)
    return Image.fromarray((flat.clip(0, 1) * 255).round().astype(np.uint8))


def _span(counts: np.ndarray, trim: float) -> tuple[int, int]:
    """First and last index of a profile once ``trim`` of its mass is cut off at each end."""
    cumulative = np.cumsum(counts)
    total = cumulative[-1]
    first = int(np.searchsorted(cumulative, trim * total, side="right"))
    last = int(np.searchsorted(cumulative, (1 - trim) * total, side="left"))
    return first, max(first, last)


def text_box(grey: Image.Image, trim: float = 0.01, pad: float = 0.15) -> tuple[int, int, int, int]:
    """Where the text is: the box of the ink pixels, padded by a share of its height.

    Ink is the smaller of the two classes that Otsu's threshold splits the image into (so dark
    text on a light page and light text on a dark one both work), which makes the box the same
    whatever the brightness, contrast or gamma of the file. ``trim`` of the ink is ignored at
    each end of both axes, so that specks of noise far from the text do not stretch the box.

    Args:
        grey: An 8-bit grey ("L") image.
        trim: Share of ink pixels ignored at each end, per axis.
        pad: Margin added on every side, as a share of the box height.

    Returns:
        (left, top, right, bottom) in pixels; the whole image when it holds no ink (a blank
        page). The padded box may reach past the image's edges: text that touches an edge is
        then framed as it would be with a margin around it (see ``crop_to_box``).
    """
    W, H = grey.size
    histogram = grey.histogram()
    threshold = otsu_threshold(histogram)
    pixels = np.asarray(grey)  # (H, W)
    ink = pixels <= threshold if 2 * sum(histogram[: threshold + 1]) <= W * H else pixels > threshold
    columns = ink.sum(axis=0)  # (W,) ink pixels per column
    if columns.sum() < 4:
        return 0, 0, W, H
    left, right = _span(columns, trim)
    top, bottom = _span(ink.sum(axis=1), trim)
    margin = pad * (bottom - top + 1)
    return round(left - margin), round(top - margin), round(right + 1 + margin), round(bottom + 1 + margin)


def crop_to_box(grey: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Crop to ``box``; where the box reaches past the image, fill with the page colour (the
    median grey level), as if the file had a margin there."""
    left, top, right, bottom = box
    W, H = grey.size
    if left >= 0 and top >= 0 and right <= W and bottom <= H:
        return grey.crop(box)
    cumulative = np.cumsum(grey.histogram())
    page = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    framed = Image.new("L", (right - left, bottom - top), page)
    inside = (max(left, 0), max(top, 0), min(right, W), min(bottom, H))
    framed.paste(grey.crop(inside), (inside[0] - left, inside[1] - top))
    return framed


def load_image(
    source: str | Path | Image.Image,
    height: int,
    width: int,
    crop_to_text: bool = True,
    normalize: bool = False,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read, grey-scale, crop to the text and resize one image.

    Args:
        source: A file path or an already opened Pillow image.
        height: Output height in pixels.
        width: Output width in pixels.
        crop_to_text: Crop to ``text_box`` before resizing, so that margins, crops, scale and
            aspect of the file do not change what the model sees.
        normalize: Turn the image into dark ink on an even white page first (``normalize_page``),
            so that light-on-dark files, shading and gradients do not change what the model sees
            (nor where the text box falls). Off for models trained before it existed.
        max_pixels: Refuse a file of more pixels, from its header, before decoding it (None:
            only Pillow's own limit).

    Returns:
        uint8 array of shape (1, height, width).

    Raises:
        OSError: The file cannot be read, is not a regular file, is over ``max_pixels``, or is
            not a complete image (Pillow's own message).
    """
    if isinstance(source, Image.Image):
        check_pixels(source, max_pixels)
        grey = to_grey(ImageOps.exif_transpose(source))
    else:
        kind = not_a_regular_file(Path(source))
        if kind == "missing":
            raise FileNotFoundError(f"no file at {source}")
        if kind is not None:
            raise OSError(f"{source} is {kind}, not an image file")
        with Image.open(source) as opened:
            check_pixels(opened, max_pixels)
            grey = to_grey(ImageOps.exif_transpose(opened))
            grey.load()  # decode now, while the file is open; raises on truncated data
    if normalize:
        grey = normalize_page(grey)
    if crop_to_text:
        grey = crop_to_box(grey, text_box(grey))
    grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    return np.array(grey, dtype=np.uint8)[None]
