"""Captchas in many styles, drawn by five generator libraries of the package index, for pretraining.

Each style is a function ``text -> image`` that draws ``text`` the way one library does, with its
sizes, colours, fonts and noise drawn at random:

- ``captcha`` (``ImageCaptcha``: warped, rotated glyphs, a curve and dots),
- ``wheezy`` (``wheezy.captcha``: per-glyph warp / rotate / offset, curves, noise, smoothing),
- ``claptcha`` (morphed glyphs, a line, white noise),
- ``multicolor`` (``multicolorcaptcha``: one tile per glyph with its own colours, rotation,
  lines and dots),
- ``easy`` (``easy-captcha-python``'s ``SpecCaptcha``: coloured glyphs, circles, a Bézier curve).

Fonts: those the libraries ship and the system's TrueType fonts, each kept only if it draws every
character asked for with a glyph of its own (``font_pool``, ``covers``), and shared by all styles.
All randomness comes from Python's ``random`` module (``easy-captcha-python`` draws from
``secrets``: its ``num`` is replaced), so ``synth.draw_captchas`` makes the drawing reproducible
from a seed.
"""

import io
import random
from collections.abc import Callable, Sequence
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Style = Callable[[str], Image.Image]
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path("/Library/Fonts"),
                    Path("C:/Windows/Fonts"))  # fmt: skip


def package_dir(module: str) -> Path:
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"{module} is not installed: pip install 'captcha_ocr[pretrain]'")
    return Path(spec.origin).parent


def glyphs(font_path: Path, characters: str) -> list[bytes] | None:
    """Each character as the font draws it at 24 px (a 40 x 40 bitmap), or None when the font
    cannot be read or draws one of them as the missing-glyph box or as nothing."""
    try:
        font = ImageFont.truetype(str(font_path), 24)
    except OSError:
        return None

    def glyph(character: str) -> bytes:
        image = Image.new("L", (40, 40))
        ImageDraw.Draw(image).text((4, 4), character, fill=255, font=font)
        return image.tobytes()

    drawn = [glyph(c) for c in characters]
    return None if {glyph("\uffff"), bytes(40 * 40)} & set(drawn) else drawn


def covers(font_path: Path, characters: str) -> bool:
    """Whether the font draws every character with a glyph of its own: not the missing-glyph box,
    not blank, and no two of ``characters`` alike. A font of capitals only draws ``a`` as ``A``,
    and an image of it under the label ``a`` is a wrong label (on this project's machine 11 of the
    93 fonts that have 0-9 a-z A-Z draw 1-29 of them with another's glyph: ``0``/``O``,
    ``5``/``S``, a whole alphabet in one case; ``benchmarks/base_fonts.py``)."""
    drawn = glyphs(font_path, "".join(sorted(set(characters))))
    return drawn is not None and len(set(drawn)) == len(drawn)


def font_files() -> list[Path]:
    """The TrueType files of the generator libraries and of the system, whatever they draw."""
    folders = [package_dir(m) for m in ("captcha", "multicolorcaptcha", "easy_captcha")]
    folders += [d for d in SYSTEM_FONT_DIRS if d.is_dir()]
    return sorted({p for folder in folders for p in folder.rglob("*.[tT][tT][fF]")})


@cache
def font_pool(characters: str) -> tuple[Path, ...]:
    """The fonts of ``font_files`` that draw all ``characters``, each with a glyph of its own."""
    fonts = tuple(p for p in font_files() if covers(p, characters))
    if not fonts:
        raise RuntimeError(f"no font draws all of {characters!r}")
    return fonts


def random_colour(low: int, high: int) -> str:
    """``#rrggbb`` with each channel drawn from ``low``-``high``."""
    return "#" + "".join(f"{random.randint(low, high):02x}" for _ in range(3))


def captcha_style(fonts: Sequence[Path]) -> Style:
    from captcha.image import ImageCaptcha

    def draw(text: str) -> Image.Image:
        height = random.randint(45, 80)
        width = int(len(text) * height * random.uniform(0.45, 0.7)) + 20
        chosen = random.sample(list(fonts), k=min(3, len(fonts)))
        sizes = tuple(int(height * f) for f in (0.6, 0.7, 0.8))
        generator = ImageCaptcha(width, height, fonts=[str(f) for f in chosen], font_sizes=sizes)
        return generator.generate_image(text)

    return draw


def wheezy_style(fonts: Sequence[Path]) -> Style:
    from wheezy.captcha import image as wheezy

    def draw(text: str) -> Image.Image:
        height = random.randint(45, 80)
        width = int(len(text) * height * random.uniform(0.5, 0.75)) + 20
        ink, paper = random_colour(0, 140), random_colour(190, 255)
        glyphs = [wheezy.warp(random.uniform(0.1, 0.3), random.uniform(0.1, 0.25)),
                  wheezy.rotate(random.randint(0, 30)), wheezy.offset(0.1, 0.1)]  # fmt: skip
        chosen = [str(f) for f in random.sample(list(fonts), k=min(2, len(fonts)))]
        sizes = (int(height * 0.7), int(height * 0.8))
        drawings = [
            wheezy.background(paper),
            wheezy.text(chosen, sizes, glyphs, ink, squeeze_factor=random.uniform(0.7, 1.0)),
            wheezy.curve(ink, width=random.randint(1, 3), number=random.randint(3, 7)),
            wheezy.noise(number=random.randint(0, 60), color=ink, level=random.randint(1, 2)),
        ]
        if random.random() < 0.5:
            drawings.append(wheezy.smooth())
        return wheezy.captcha(drawings=drawings, width=width, height=height)(list(text))

    return draw


class SizedFont(ImageFont.FreeTypeFont):
    """A font with the ``getsize`` of Pillow < 10, which ``claptcha`` 0.3.3 measures text with."""

    def getsize(self, text: str) -> tuple[int, int]:
        _, _, right, bottom = self.getbbox(text)
        return round(right), round(bottom)


def claptcha_style(fonts: Sequence[Path]) -> Style:
    from claptcha import Claptcha

    def draw(text: str) -> Image.Image:
        height = random.randint(45, 80)
        width = int(len(text) * height * random.uniform(0.5, 0.8)) + 20
        margin = (random.randint(5, 20), random.randint(5, 12))
        generator = Claptcha(text, str(random.choice(fonts)), size=(width, height), margin=margin,
                             noise=random.choice((0.0, random.uniform(0.05, 0.4))))  # fmt: skip
        generator._Claptcha__font = SizedFont(generator.font.path, generator.font.size)  # see SizedFont
        return generator.image[1]

    return draw


def multicolor_style(fonts: Sequence[Path]) -> Style:
    from multicolorcaptcha import CaptchaGenerator

    def draw(text: str) -> Image.Image:
        generator = CaptchaGenerator(random.randint(0, 3))
        generator.l_fonts = [str(f) for f in fonts]
        background = None if random.random() < 0.5 else generator.gen_rand_color()  # None: a colour per glyph
        tiles = [generator.gen_captcha_char_image(c, generator.one_char_image_size, random.randint(0, 2),
                                                  background, (-30, 30))["image"] for c in text]  # fmt: skip
        image = generator.images_join_horizontal(tiles)
        for _ in range(random.randint(0, 2)):
            generator.add_rand_horizontal_line_to_image(image, random.randint(1, 3))
        size = generator.one_char_image_size[0]
        for _ in range(random.randint(0, 6)):
            generator.add_rand_circle_to_image(image, int(0.05 * size), int(0.15 * size))
        return image

    return draw


def easy_style(fonts: Sequence[Path]) -> Style:
    from easy_captcha import SpecCaptcha

    def draw(text: str) -> Image.Image:
        height = random.randint(40, 70)
        width = int(len(text) * height * random.uniform(0.5, 0.75)) + 10
        generator = SpecCaptcha(width, height, len(text))
        generator.num = lambda low, high=None: random.randrange(low) if high is None else random.randrange(low, high)
        generator.set_font(str(random.choice(fonts)), int(height * random.uniform(0.55, 0.8)))
        generator._chars = text
        stream = io.BytesIO()
        if not generator.out(stream):
            raise RuntimeError(f"easy-captcha-python could not draw {text!r}")
        return Image.open(stream).convert("RGB")

    return draw


STYLES: dict[str, Callable[[Sequence[Path]], Style]] = {
    "captcha": captcha_style,
    "wheezy": wheezy_style,
    "claptcha": claptcha_style,
    "multicolor": multicolor_style,
    "easy": easy_style,
}


def mixed_style(characters: str, names: Sequence[str] = tuple(STYLES)) -> Style:
    """A style that draws each text in one of ``names``, chosen at random, with fonts that have
    every one of ``characters``."""
    fonts = font_pool(characters)
    styles = [STYLES[name](fonts) for name in names]
    return lambda text: random.choice(styles)(text)
