"""What users' captcha images go through before they reach a reader, at graded strengths.

Each perturbation maps a Pillow image to another, as a screenshot, a re-encoding, a darker page
or a scaled copy would, and comes at three strengths: ``mild``, ``moderate`` and ``strong``. The
robustness benchmark (``benchmarks/robustness.py``) reads every test image through each of them.
Randomness (noise, uneven margins) is drawn from a generator seeded per image, so a run repeats.

Two groups. ``DESIGN`` holds the families that were looked at while the preparation
(``images.normalize_page``) and the augmentation policy were designed. ``HELD_OUT`` holds
families written once, before any model of that design was trained, and never used to choose
anything: they measure how the design carries over to changes nobody tuned it for.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

STRENGTHS = ("mild", "moderate", "strong")
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Perturbation:
    """A named change of an image with one parameter value per strength.

    Args:
        name: Short name, used in tables and plots.
        unit: What the parameter values mean (``"px white, all sides"``).
        values: The parameter at ``mild``, ``moderate`` and ``strong``.
        apply: ``apply(image, value, rng)`` returns the changed RGB image.
    """

    name: str
    unit: str
    values: tuple
    apply: Callable[[Image.Image, Any, np.random.Generator], Image.Image]

    def __call__(self, image: Image.Image, strength: str, rng: np.random.Generator) -> Image.Image:
        return self.apply(image.convert("RGB"), self.values[STRENGTHS.index(strength)], rng)


def _margin(image: Image.Image, pixels: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.expand(image, border=pixels, fill=WHITE)


def _uneven_margin(image: Image.Image, pixels: int, rng: np.random.Generator) -> Image.Image:
    left, top, right, bottom = (rng.uniform(0, 1, 4) * pixels).round().astype(int)
    return ImageOps.expand(image, border=(int(left), int(top), int(right), int(bottom)), fill=WHITE)


def _page_margin(image: Image.Image, pixels: int, rng: np.random.Generator) -> Image.Image:
    """A margin of a light page colour with a thin frame, as a screenshot of a form has."""
    framed = ImageOps.expand(image, border=1, fill=(150, 150, 150))
    return ImageOps.expand(framed, border=pixels, fill=(236, 240, 244))


def _crop(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _uneven_crop(image: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    left, top, right, bottom = rng.uniform(0, 2 * fraction, 4)
    box = (left * image.width, top * image.height, (1 - right) * image.width, (1 - bottom) * image.height)
    return image.crop(tuple(round(v) for v in box))


def _scale(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _aspect(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    return image.resize((round(image.width * factor), image.height), Image.Resampling.BICUBIC)


def _rotate(image: Image.Image, degrees: float, rng: np.random.Generator) -> Image.Image:
    sign = 1 if rng.random() < 0.5 else -1
    return image.rotate(sign * degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)


def _brightness(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def _contrast(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(factor)


def _gamma(image: Image.Image, gamma: float, rng: np.random.Generator) -> Image.Image:
    table = [round(255 * (i / 255) ** gamma) for i in range(256)]
    return image.point(table * 3)


def _tint(image: Image.Image, amount: float, rng: np.random.Generator) -> Image.Image:
    """Blend with the image drawn in one colour: a yellow, blue or green page."""
    colours = ((255, 210, 120), (120, 170, 255), (140, 220, 140))
    colour = colours[int(rng.integers(len(colours)))]
    tinted = ImageOps.colorize(image.convert("L"), black=(0, 0, 0), white=colour)
    return Image.blend(image, tinted, amount)


def _blur(image: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def _noise(image: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + rng.normal(0, sigma, pixels.shape[:2])[..., None]  # the same noise on R, G, B
    return Image.fromarray(noisy.clip(0, 255).round().astype(np.uint8))


def _low_resolution(image: Image.Image, factor: float, rng: np.random.Generator) -> Image.Image:
    small = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.NEAREST)


def _jpeg(image: Image.Image, quality: int, rng: np.random.Generator) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _invert(image: Image.Image, page: int, rng: np.random.Generator) -> Image.Image:
    """Light text on a dark page: the image inverted, its page brought down to ``page``."""
    inverted = np.asarray(ImageOps.invert(image), dtype=np.float32)
    return Image.fromarray((inverted * page / 255).round().astype(np.uint8))


def _shading(image: Image.Image, darkest: float, rng: np.random.Generator) -> Image.Image:
    """One side in shadow: brightness falls linearly to ``darkest`` towards a random side."""
    pixels = np.asarray(image, dtype=np.float32)
    ramp = np.linspace(darkest, 1.0, pixels.shape[1])  # (W,)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    return Image.fromarray((pixels * ramp[None, :, None]).round().astype(np.uint8))


def _shear(image: Image.Image, slope: float, rng: np.random.Generator) -> Image.Image:
    """Slanted text: each row shifted by ``slope`` times its height above the bottom, either way."""
    sign = 1 if rng.random() < 0.5 else -1
    extra = round(slope * image.height)
    wide = ImageOps.expand(image, border=(extra, 0, extra, 0), fill=WHITE)
    matrix = (1, sign * slope, -sign * slope * image.height / 2, 0, 1, 0)
    return wide.transform(wide.size, Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC, fillcolor=WHITE)


def _occlusion(image: Image.Image, radius: float, rng: np.random.Generator) -> Image.Image:
    """A dark blob (radius a share of the height) somewhere on the text's middle band."""
    blob = image.copy()
    r = radius * image.height
    x = rng.uniform(0.2, 0.8) * image.width
    y = rng.uniform(0.35, 0.65) * image.height
    ImageDraw.Draw(blob).ellipse((x - r, y - r, x + r, y + r), fill=(40, 40, 40))
    return blob


def _keystone(image: Image.Image, amount: float, rng: np.random.Generator) -> Image.Image:
    """A photo taken at an angle: one side ``amount`` of the height shorter than the other."""
    W, H = image.size
    inset = amount * H / 2
    left, right = (inset, 0.0) if rng.random() < 0.5 else (0.0, inset)
    quad = (0, -left, 0, H + left, W, H + right, W, -right)  # where the corners come from
    return image.transform(image.size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=WHITE)


def _bold(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """Bolder strokes: every pixel the darkest of its ``size`` x ``size`` square."""
    return image.filter(ImageFilter.MinFilter(size))


def _thin(image: Image.Image, pixels: int, rng: np.random.Generator) -> Image.Image:
    """Thinner strokes, as a lighter weight of the font draws them: ``pixels`` of ink taken off
    each stroke's width (half on each side), at twice the size so that one pixel can be taken."""
    double = image.resize((2 * image.width, 2 * image.height), Image.Resampling.BICUBIC)
    return double.filter(ImageFilter.MaxFilter(2 * pixels + 1)).resize(image.size, Image.Resampling.LANCZOS)


def _border(image: Image.Image, pixels: int, rng: np.random.Generator) -> Image.Image:
    """A dark border drawn round the image, as some sites frame their captchas."""
    return ImageOps.expand(image, border=pixels, fill=(40, 40, 40))


def _form(image: Image.Image, surround: float, rng: np.random.Generator) -> Image.Image:
    """The captcha cropped loosely from its form: a prompt line above it and an empty input box
    below, on a light page, with ``surround`` x its height of the form on every side."""
    W, H = image.size
    pad, line = round(surround * H), max(8, H // 3)
    canvas = Image.new("RGB", (W + 2 * pad, H + 2 * pad + 2 * line + 8), (244, 245, 247))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=round(0.8 * line))
    draw.text((pad, pad), "Type the characters you see", fill=(50, 50, 50), font=font)
    top = pad + line + 4
    canvas.paste(image, (pad, top))
    box = top + H + 4
    draw.rectangle((pad, box, pad + W, box + line), fill=WHITE, outline=(130, 130, 130))
    return canvas


# Held-out families: written before any model of the current design was trained; never tuned on.


def _wave(image: Image.Image, amplitude: float, rng: np.random.Generator) -> Image.Image:
    """Text on a wavy baseline: columns shifted up and down by a sine (amplitude a share of the height)."""
    pixels = np.asarray(image)
    H, W = pixels.shape[:2]
    pad = int(np.ceil(amplitude * H))
    page = np.pad(pixels, ((pad, pad), (0, 0), (0, 0)), mode="edge")
    phase = rng.uniform(0, 2 * np.pi)
    shifts = np.round(amplitude * H * np.sin(2 * np.pi * np.arange(W) / (0.6 * W) + phase)).astype(int)
    waved = np.stack([np.roll(page[:, x], shifts[x], axis=0) for x in range(W)], axis=1)
    return Image.fromarray(waved)


def _dither(image: Image.Image, scale: float, rng: np.random.Generator) -> Image.Image:
    """A 1-bit halftone (Floyd-Steinberg), made at ``scale`` of the size and scaled back."""
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    halftone = image.convert("L").resize(size, Image.Resampling.BILINEAR).convert("1")
    return halftone.convert("RGB").resize(image.size, Image.Resampling.NEAREST)


def _grid(image: Image.Image, spacing: int, rng: np.random.Generator) -> Image.Image:
    """Graph paper: thin grey lines every ``spacing`` pixels both ways under the text."""
    pixels = np.asarray(image).copy()
    ox, oy = (int(v) for v in rng.integers(0, spacing, 2))
    lines = np.zeros(pixels.shape[:2], dtype=bool)
    lines[oy::spacing, :] = True
    lines[:, ox::spacing] = True
    pixels[lines] = np.minimum(pixels[lines], 120)
    return Image.fromarray(pixels)


def _vignette(image: Image.Image, depth: float, rng: np.random.Generator) -> Image.Image:
    """Dark corners: brightness falls by up to ``depth`` with the distance from the centre."""
    pixels = np.asarray(image, dtype=np.float32)
    H, W = pixels.shape[:2]
    y, x = np.mgrid[0:H, 0:W]
    distance = np.hypot((x - W / 2) / (W / 2), (y - H / 2) / (H / 2)) / np.sqrt(2)  # 0 centre, 1 corner
    return Image.fromarray((pixels * (1 - depth * distance**2)[..., None]).round().astype(np.uint8))


def _ghost(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """A double print: a faint copy offset down and to the right, darkening where it lands."""
    offset = (round(0.06 * image.width), round(0.1 * image.height))
    shifted = ImageOps.expand(image, border=(offset[0], offset[1], 0, 0), fill=WHITE).crop((0, 0, *image.size))
    ghost = Image.blend(Image.new("RGB", image.size, WHITE), shifted, strength)
    return ImageChops.darker(image, ghost)


def _stripes(image: Image.Image, contrast: float, rng: np.random.Generator) -> Image.Image:
    """A background of diagonal coloured stripes, ``contrast`` of full strength, under the text."""
    pixels = np.asarray(image, dtype=np.float32)
    H, W = pixels.shape[:2]
    y, x = np.mgrid[0:H, 0:W]
    band = ((x + y) // 6) % 2  # (H, W): alternate 6-px bands
    colour = np.where(band[..., None] == 1, np.array([120, 180, 255]), np.array([255, 200, 120]))
    page = 255 - contrast * (255 - colour)  # (H, W, 3)
    return Image.fromarray(np.minimum(pixels, page).round().astype(np.uint8))


def _dust(image: Image.Image, density: float, rng: np.random.Generator) -> Image.Image:
    """Dark specks of 1-3 px, ``density`` of them per pixel of the image."""
    dusty = image.copy()
    draw = ImageDraw.Draw(dusty)
    for _ in range(round(density * image.width * image.height)):
        x, y = rng.uniform(0, image.width), rng.uniform(0, image.height)
        r = rng.uniform(0.5, 1.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(30, 30, 30))
    return dusty


def _posterize(image: Image.Image, bits: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.posterize(image, bits)


def _unsharp(image: Image.Image, percent: int, rng: np.random.Generator) -> Image.Image:
    """An over-sharpened export: unsharp masking with radius 2 at ``percent``."""
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=percent, threshold=0))


def _photo(image: Image.Image, amount: float, rng: np.random.Generator) -> Image.Image:
    """A phone photo of a screen: a slight tilt and keystone, soft focus, a warm cast and noise,
    all growing with ``amount``."""
    tilted = image.rotate(rng.uniform(-3, 3) * amount, Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)
    W, H = tilted.size
    inset = 0.15 * amount * H
    quad = (0, -inset, 0, H + inset, W, H, W, 0)
    photo = tilted.transform(tilted.size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC, fillcolor=WHITE)
    photo = photo.filter(ImageFilter.GaussianBlur(0.8 * amount))
    pixels = np.asarray(photo, dtype=np.float32) * np.array([1.0, 1 - 0.08 * amount, 1 - 0.2 * amount])
    pixels += rng.normal(0, 10 * amount, pixels.shape[:2])[..., None]
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8))


DESIGN = (
    Perturbation("margin", "px white, all sides", (6, 16, 40), _margin),
    Perturbation("uneven margin", "px white, up to, each side", (10, 25, 60), _uneven_margin),
    Perturbation("page margin", "px page colour + frame", (6, 16, 40), _page_margin),
    Perturbation("crop", "of each side", (0.02, 0.04, 0.07), _crop),
    Perturbation("uneven crop", "of a side, up to", (0.02, 0.04, 0.07), _uneven_crop),
    Perturbation("scale", "x size", (0.75, 0.5, 0.35), _scale),
    Perturbation("upscale", "x size", (1.5, 2.5, 4.0), _scale),
    Perturbation("aspect", "x width", (1.25, 1.6, 2.0), _aspect),
    Perturbation("squeeze", "x width", (0.85, 0.7, 0.55), _aspect),
    Perturbation("rotation", "degrees", (2, 4, 8), _rotate),
    Perturbation("darker", "x brightness", (0.8, 0.6, 0.4), _brightness),
    Perturbation("brighter", "x brightness", (1.2, 1.5, 2.0), _brightness),
    Perturbation("contrast", "x contrast", (0.7, 0.5, 0.3), _contrast),
    Perturbation("gamma", "gamma", (1.5, 2.2, 3.0), _gamma),
    Perturbation("gamma light", "gamma", (0.7, 0.5, 0.33), _gamma),
    Perturbation("tint", "blend with a colour", (0.3, 0.6, 1.0), _tint),
    Perturbation("blur", "px Gaussian radius", (0.6, 1.0, 1.6), _blur),
    Perturbation("noise", "grey levels std", (8, 16, 32), _noise),
    Perturbation("low resolution", "x resolution", (0.6, 0.4, 0.3), _low_resolution),
    Perturbation("jpeg", "quality", (50, 25, 10), _jpeg),
    Perturbation("inverted", "page grey level, light text", (255, 200, 140), _invert),
    Perturbation("shading", "x brightness at the dark side", (0.6, 0.4, 0.2), _shading),
    Perturbation("shear", "px shift per px of height", (0.15, 0.3, 0.45), _shear),
    Perturbation("occlusion", "blob radius, x height", (0.08, 0.12, 0.16), _occlusion),
    Perturbation("keystone", "short side, x height", (0.1, 0.2, 0.3), _keystone),
    Perturbation("bold", "px min filter", (3, 5, 7), _bold),
    Perturbation("thin", "px of ink off each stroke", (1, 2, 3), _thin),
    Perturbation("border", "px dark border", (1, 3, 6), _border),
    Perturbation("form", "x height of the form around it", (0.3, 0.6, 1.2), _form),
)
HELD_OUT = (
    Perturbation("wave", "amplitude, x height", (0.04, 0.08, 0.12), _wave),
    Perturbation("dither", "1-bit halftone at x size", (1.0, 0.7, 0.5), _dither),
    Perturbation("grid", "px between grid lines", (12, 8, 5), _grid),
    Perturbation("vignette", "darkening at the corners", (0.3, 0.5, 0.7), _vignette),
    Perturbation("ghost", "strength of an offset copy", (0.3, 0.5, 0.7), _ghost),
    Perturbation("stripes", "strength of striped page", (0.3, 0.5, 0.8), _stripes),
    Perturbation("dust", "dark specks per pixel", (0.002, 0.005, 0.01), _dust),
    Perturbation("posterize", "bits per channel", (3, 2, 1), _posterize),
    Perturbation("unsharp", "% unsharp mask", (150, 300, 500), _unsharp),
    Perturbation("photo", "amount of tilt, blur, cast, noise", (0.5, 1.0, 1.5), _photo),
)
PERTURBATIONS = DESIGN + HELD_OUT
