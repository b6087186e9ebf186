"""What users' captcha images go through before they reach a reader, at graded strengths.

Each perturbation maps a Pillow image to another, as a screenshot, a re-encoding, a darker page
or a scaled copy would, and comes at three strengths: ``mild``, ``moderate`` and ``strong``. The
robustness benchmark (``benchmarks/robustness.py``) reads every test image through each of them.
Randomness (noise, uneven margins) is drawn from a generator seeded per image, so a run repeats.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

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
    apply: Callable[[Image.Image, object, np.random.Generator], Image.Image]

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


PERTURBATIONS = (
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
)
