"""Captcha styles that judge and never choose: drawn by generator libraries of the package index
that no pretraining or design step of this project uses, with fonts that none of them has seen.

Pretraining (``captcha_ocr.data.styles``) draws with ``captcha``, ``wheezy.captcha``, ``claptcha``,
``multicolorcaptcha`` and ``easy-captcha-python``, and with the fonts those ship and the system's.
These styles use other libraries and fonts that come from font packages of the index
(``font-lato``, ``font-caladea``, ``font-fjallaone``), outside every folder ``styles.font_pool``
searches. Each style is what a site using the library might serve: one charset, one length (or
the library's own choice of text), the library's own noise.

    pip install -e ".[heldout,compare]"

Every draw takes its randomness from Python's ``random`` module, seeded by the caller.
"""

import random
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from PIL import Image, ImageFont


@dataclass(frozen=True)
class HeldOutStyle:
    """A style: its characters, and a function that draws one captcha (its text and image)."""

    name: str
    library: str
    charset: str
    length: int
    draw: Callable[[], tuple[str, Image.Image]]


def font_files(package: str) -> list[Path]:
    spec = find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{package} is not installed (see benchmarks/held_out_styles.py)")
    return sorted((Path(spec.origin).parent / "files").glob("*.ttf"))


class SizedFont(ImageFont.FreeTypeFont):
    """A font with the ``getsize`` of Pillow < 10, which ``bettercaptcha`` measures text with."""

    def getsize(self, text: str) -> tuple[int, int]:
        _, _, right, bottom = self.getbbox(text)
        return right, bottom


def bettercaptcha_style() -> HeldOutStyle:
    """Digits and lower-case letters, 5 of them, in Lato; a speckled or tinted page, a sine
    distortion, lines and dots in the ink's colour, sometimes a frame."""
    from bettercaptcha import image as better

    charset, length = string.digits + string.ascii_lowercase, 5
    fonts = [f for f in font_files("font_lato") if "Thin" not in f.name and "Hairline" not in f.name]
    better.ImageFont.truetype = lambda path, size: SizedFont(path, size)  # see SizedFont

    def draw() -> tuple[str, Image.Image]:
        text = "".join(random.choice(charset) for _ in range(length))
        colour = tuple(random.randint(0, 120) for _ in range(3))
        generator = better.CaptchaImage(
            font=str(random.choice(fonts)), font_size=random.randint(28, 44), color=colour, text=text,
            background=random.choice([better.Background.RANDOM, better.Background.COLOR]),
            distortion=random.random() < 0.7, lines=random.randint(1, 5), points=random.randint(5, 30),
            frame=random.random() < 0.3,
        )  # fmt: skip
        return text, generator.create()

    return HeldOutStyle("bettercaptcha", "bettercaptcha 1.0.2", charset, length, draw)


def captchagen_style() -> HeldOutStyle:
    """Upper-case letters and digits, 4 of them, in Caladea; each character rotated and coloured
    apart, many dots and lines."""
    from CaptchaGen.CaptchaGen import CaptchaConfig, CaptchaGenerator

    charset, length = string.ascii_uppercase + string.digits, 4
    folder = font_files("font_caladea")[0].parent

    def draw() -> tuple[str, Image.Image]:
        config = CaptchaConfig(width=random.randint(140, 200), height=random.randint(50, 70), min_len=length,
                               max_len=length, rotate=True, noise=True, random_color=True,
                               dot_count=random.randint(50, 200), line_count=random.randint(2, 8),
                               text_mode="custom", custom_charset=charset)  # fmt: skip
        image, text = CaptchaGenerator(str(folder), config).generate()
        return text, image

    return HeldOutStyle("captchagen", "captchagen 0.1.0", charset, length, draw)


def randcaptcha_style() -> HeldOutStyle:
    """Upper-case letters and digits as the library draws them, 6 of them, in Fjalla One; each
    character rotated up to 40 degrees in its own colour on a random light page, one curve."""
    from randcaptcha import CreateImageCaptcha

    charset, length = string.ascii_uppercase + string.digits, 6
    font = str(font_files("font_fjallaone")[0])

    def draw() -> tuple[str, Image.Image]:
        background = tuple(random.randint(170, 255) for _ in range(3))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "captcha.png"
            text, _ = CreateImageCaptcha(font, random.randint(26, 40), str(path), length=length, valid=charset,
                                         background=background, rotate=(-40, 40))  # fmt: skip
            return text, Image.open(path).convert("RGB")

    return HeldOutStyle("randcaptcha", "randcaptcha 0.2", charset, length, draw)


HELD_OUT_STYLES: dict[str, Callable[[], HeldOutStyle]] = {
    "bettercaptcha": bettercaptcha_style,
    "captchagen": captchagen_style,
    "randcaptcha": randcaptcha_style,
}


def generate_captcha_style() -> HeldOutStyle:
    """A design style, which may choose: digits and letters of both cases, 5 distinct ones, as
    ``generate-captcha`` 0.0.4 draws them in Hanken Grotesk (lines, dots, a perspective warp)."""
    from generate_captcha.generate_captcha import gen_captcha_text_image

    charset, length = string.digits + string.ascii_letters, 5
    spec = find_spec("font_hanken_grotesk")
    fonts = sorted((Path(spec.origin).parent / "files").glob("*.otf")) if spec and spec.origin else []

    def draw() -> tuple[str, Image.Image]:
        ink = tuple(random.randint(0, 110) for _ in range(3))
        with tempfile.TemporaryDirectory() as folder:
            text, path = gen_captcha_text_image(
                folder, file_name="captcha", size=(random.randint(140, 180), random.randint(46, 56)), chars=charset,
                fg_color=ink, bg_color=tuple(random.randint(200, 255) for _ in range(3)),
                xy=(random.randint(2, 12), random.randint(0, 4)), font_size=random.randint(22, 28),
                font_type=str(random.choice(fonts)), length=length, draw_lines=True, n_line=(1, 3),
                draw_points=True, point_chance=random.randint(1, 4), draw_transform=True,
            )  # fmt: skip
            return text, Image.open(path).convert("RGB")

    return HeldOutStyle("generate_captcha", "generate-captcha 0.0.4", charset, length, draw)


# Design styles: what choices of the recipe are measured on, never on the held-out ones.
DESIGN_STYLES: dict[str, Callable[[], HeldOutStyle]] = {"generate_captcha": generate_captcha_style}
STYLES = {**HELD_OUT_STYLES, **DESIGN_STYLES}


def draw_style(name: str, count: int, seed: int) -> tuple[HeldOutStyle, list[tuple[str, Image.Image]]]:
    """``count`` captchas of the style, reproducible from ``seed``."""
    style = STYLES[name]()
    random.seed(seed)
    return style, [style.draw() for _ in range(count)]
