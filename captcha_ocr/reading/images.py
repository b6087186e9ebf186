"""Turning image files of any size and mode into the model's grey-scale input (no torch needed).

``load_image`` is the one preprocessing function: the training data set, the torch reader and
the ONNX reader all call it (or its two halves: ``read_grey`` decodes, ``prepare_grey``
prepares), so a model always sees its input prepared the same way. It makes the page even and
the ink dark (``normalize_page``), finds the text apart from frames, boxes and other lines of
text around it (``find_text``), crops to it (``crop_text``) and resizes; what is left of
brightness and contrast the network standardises itself (``CaptchaNet``). An exported model
carries the same preparation as an ONNX graph (``model.preparation_graph``), which the ONNX
reader runs on the decoded grey pixels.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageFilter, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GREY_LEVELS = np.arange(256, dtype=np.float64)
WORKING_HEIGHT = 32  # the page is estimated on a copy this high (strokes are 2-4 px there)
TEXT_MARGIN = 0.15  # the text box is padded by this share of its height on every side
TEXT_TRIM = 0.01  # ... after this share of its ink is ignored at each end of both axes (specks)
DEFAULT_MAX_PIXELS = 4_000_000  # the reader's, the CLI's and the server's default limit per image
RULE_LENGTH = 0.4  # a horizontal run of ink longer than this share of the width is a line, not a stroke
FRAME_HEIGHT = 0.9  # a vertical one longer than this share of the height is a frame's side
RULE_WIDTH = 0.12  # ... when it is no thicker than this share of the image across it


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


def ink_mask(grey: Image.Image) -> np.ndarray:
    """(H, W) bool: the smaller of the two classes that Otsu's threshold splits the image into,
    so that dark text on a light page and light text on a dark one both give the text, whatever
    the brightness, contrast or gamma of the file."""
    histogram = grey.histogram()
    threshold = otsu_threshold(histogram)
    pixels = np.asarray(grey)  # (H, W)
    return pixels <= threshold if 2 * sum(histogram[: threshold + 1]) <= pixels.size else pixels > threshold


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) int: the length of the horizontal run of True that each pixel is
    in (0 where False).

    >>> run_lengths(np.array([[1, 1, 0, 1], [1, 1, 1, 0]], dtype=bool)).tolist()
    [[2, 2, 0, 1], [3, 3, 3, 0]]
    """
    H, W = mask.shape
    stopped = np.concatenate([mask, np.zeros((H, 1), dtype=bool)], axis=1).ravel()  # a gap ends every row
    starts = stopped & ~np.concatenate([[False], stopped[:-1]])
    run = np.cumsum(starts) * stopped  # (H * (W + 1),): 1, 2, ... per run, 0 off it
    lengths = np.bincount(run)
    lengths[0] = 0
    return lengths[run].reshape(H, W + 1)[:, :W]


def rules(ink: np.ndarray) -> np.ndarray:
    """(H, W) bool: the ink of thin straight lines longer than any stroke of a character:
    horizontal runs over ``RULE_LENGTH`` of the width (a frame's top and bottom, an input box, a
    rule) and vertical runs over ``FRAME_HEIGHT`` of the height (a frame's sides), where the
    line is at most ``RULE_WIDTH`` of the other side thick (or where two such lines meet, at a
    frame's corner), so that the strokes of characters that a line crosses stay ink."""
    H, W = ink.shape
    across, down = run_lengths(ink), run_lengths(ink.T).T  # (H, W) each
    long_across, long_down = across >= RULE_LENGTH * W, down >= FRAME_HEIGHT * H
    horizontal = long_across & ((down <= max(2.0, RULE_WIDTH * H)) | long_down)
    vertical = long_down & ((across <= max(2.0, RULE_WIDTH * W)) | long_across)
    return horizontal | vertical


def _bands(profile: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of non-zero entries of a profile."""
    edges = np.diff(np.concatenate([[0], (profile > 0).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _text_line(bands: list[tuple[int, int]], mass: list[int]) -> tuple[int, int]:
    """The rows of the captcha among bands of rows that hold ink: the band of the most ink, with
    the bands beside it that belong to it. A neighbour belongs when it lies within a tenth of
    the band's height and is either as tall as half of it (characters set higher or lower) or
    light (the dot of an i, an accent, a speck); a shorter line of some weight is other text (a
    prompt, a caption)."""
    main = int(np.argmax(mass))
    height = bands[main][1] - bands[main][0]
    reach = max(1.0, 0.1 * height)

    def belongs(neighbour: int, gap: int) -> bool:
        start, end = bands[neighbour]
        return gap <= reach and (end - start >= 0.5 * height or mass[neighbour] <= 0.1 * mass[main])

    first = last = main
    while first > 0 and belongs(first - 1, bands[first][0] - bands[first - 1][1]):
        first -= 1
    while last < len(bands) - 1 and belongs(last + 1, bands[last + 1][0] - bands[last][1]):
        last += 1
    return bands[first][0], bands[last][1]


def find_text(grey: Image.Image, trim: float = TEXT_TRIM) -> tuple[tuple[int, int, int, int] | None, np.ndarray]:
    """Where the text is, and what ink around it is not text.

    The ink (``ink_mask``) less its straight lines (``rules``: frames, input boxes) is grouped
    into bands of rows with ink; when there are several, the captcha is the band of the most ink
    and what belongs to it (``_text_line``), and the other bands (a prompt above, a caption
    below) are clutter too. The box is that ink's, with ``trim`` of it ignored at each end of
    both axes, so that specks of noise far from the text do not stretch it.

    Returns:
        (left, top, right, bottom) of the text, or None when the image holds no ink (a blank
        page); and (H, W) bool, the ink that is not text.
    """
    ink = ink_mask(grey)
    clutter = ink & rules(ink)
    text = ink & ~clutter
    rows = text.sum(axis=1)  # (H,) ink pixels per row
    bands = _bands(rows)
    if len(bands) > 1:
        top, bottom = _text_line(bands, [int(rows[start:end].sum()) for start, end in bands])
        outside = np.ones(len(rows), dtype=bool)
        outside[top:bottom] = False
        clutter |= text & outside[:, None]
        text &= ~outside[:, None]
    columns = text.sum(axis=0)  # (W,)
    if columns.sum() < 4:
        return None, clutter
    left, right = _span(columns, trim)
    top, bottom = _span(text.sum(axis=1), trim)
    return (left, top, right + 1, bottom + 1), clutter


def _padded(box: tuple[int, int, int, int], pad: float) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    margin = pad * (bottom - top)
    return round(left - margin), round(top - margin), round(right + margin), round(bottom + margin)


def text_box(grey: Image.Image, trim: float = TEXT_TRIM, pad: float = TEXT_MARGIN) -> tuple[int, int, int, int]:
    """The box of the text (``find_text``), padded by a share of its height.

    Args:
        grey: An 8-bit grey ("L") image.
        trim: Share of ink pixels ignored at each end, per axis.
        pad: Margin added on every side, as a share of the box height.

    Returns:
        (left, top, right, bottom) in pixels; the whole image when it holds no ink (a blank
        page). The padded box may reach past the image's edges: text that touches an edge is
        then framed as it would be with a margin around it (see ``crop_to_box``).
    """
    box, _ = find_text(grey, trim)
    return (0, 0, *grey.size) if box is None else _padded(box, pad)


def page_level(grey: Image.Image) -> int:
    """The page colour: the median grey level."""
    cumulative = np.cumsum(grey.histogram())
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))


def crop_text(grey: Image.Image, trim: float = TEXT_TRIM, pad: float = TEXT_MARGIN) -> Image.Image:
    """Crop to the padded box of the text (``text_box``), with the clutter that the margin would
    take in (a frame, the edge of an input box, a line of a prompt) painted over with the page."""
    box, clutter = find_text(grey, trim)
    if box is None:
        return grey
    left, top, right, bottom = box
    clutter[top:bottom, left:right] = False  # what crosses the text stays: it is part of the captcha
    if clutter.any():
        pixels = np.array(grey)  # (H, W)
        pixels[clutter] = page_level(grey)
        grey = Image.fromarray(pixels)
    return crop_to_box(grey, _padded(box, pad))


def crop_to_box(grey: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Crop to ``box``; where the box reaches past the image, fill with the page colour (the
    median grey level), as if the file had a margin there."""
    left, top, right, bottom = box
    W, H = grey.size
    if left >= 0 and top >= 0 and right <= W and bottom <= H:
        return grey.crop(box)
    framed = Image.new("L", (right - left, bottom - top), page_level(grey))
    inside = (max(left, 0), max(top, 0), min(right, W), min(bottom, H))
    framed.paste(grey.crop(inside), (inside[0] - left, inside[1] - top))
    return framed


def read_grey(source: str | Path | Image.Image, max_pixels: int | None = None) -> Image.Image:
    """Open and decode one image as 8-bit grey ("L"), turned as its EXIF orientation says.

    Args:
        source: A file path or an already opened Pillow image.
        max_pixels: Refuse a file of more pixels, from its header, before decoding it (None:
            only Pillow's own limit).

    Raises:
        OSError: The file cannot be read, is not a regular file, is over ``max_pixels``, or is
            not a complete image (Pillow's own message).
    """
    if isinstance(source, Image.Image):
        check_pixels(source, max_pixels)
        return to_grey(ImageOps.exif_transpose(source))
    kind = not_a_regular_file(Path(source))
    if kind == "missing":
        raise FileNotFoundError(f"no file at {source}")
    if kind is not None:
        raise OSError(f"{source} is {kind}, not an image file")
    with Image.open(source) as opened:
        check_pixels(opened, max_pixels)
        grey = to_grey(ImageOps.exif_transpose(opened))
        grey.load()  # decode now, while the file is open; raises on truncated data
    return grey


def prepare_grey(
    grey: Image.Image, height: int, width: int, crop_to_text: bool = True, normalize: bool = False
) -> np.ndarray:
    """The model's input from a grey image: (1, height, width) uint8. What the preparation graph
    of an exported model (``model.preparation_graph``) computes from the same pixels."""
    if normalize:
        grey = normalize_page(grey)
    if crop_to_text:
        grey = crop_text(grey)
    grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    return np.array(grey, dtype=np.uint8)[None]


def load_image(
    source: str | Path | Image.Image,
    height: int,
    width: int,
    crop_to_text: bool = True,
    normalize: bool = False,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read, grey-scale, crop to the text and resize one image (``read_grey``, then
    ``prepare_grey``).

    Args:
        source: A file path or an already opened Pillow image.
        height: Output height in pixels.
        width: Output width in pixels.
        crop_to_text: Crop to the text before resizing (``crop_text``), so that margins, crops,
            scale and aspect of the file, and a frame, a prompt or an input box around the
            captcha, do not change what the model sees.
        normalize: Turn the image into dark ink on an even white page first (``normalize_page``),
            so that light-on-dark files, shading and gradients do not change what the model sees
            (nor where the text box falls). Off for models trained before it existed.
        max_pixels: Refuse a file of more pixels, from its header, before decoding it (None:
            only Pillow's own limit).

    Returns:
        uint8 array of shape (1, height, width).

    Raises:
        OSError: As ``read_grey``.
    """
    return prepare_grey(read_grey(source, max_pixels), height, width, crop_to_text, normalize)
