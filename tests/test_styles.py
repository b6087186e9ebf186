"""The pretraining set's drawing: five generator libraries, fonts that draw every character apart, arithmetic
among the texts, the same images from the same seed (and for any number of drawing processes)."""

import string
from pathlib import Path

import pytest

from captcha_ocr.data.styles import STYLES, covers, font_pool, package_dir
from captcha_ocr.data.synth import ARITHMETIC_CHARSET, draw_captchas, drawing

CHARSET = string.digits + string.ascii_letters
STYLE_FONTS = package_dir("easy_captcha") / "fonts"


@pytest.mark.parametrize("name", sorted(STYLES))
@pytest.mark.parametrize("text", ["a7Q2", "Zx0Ob9kW"])
def test_every_style_draws_any_text_of_the_charset(name: str, text: str) -> None:
    image = STYLES[name](font_pool(CHARSET))(text)
    assert image.mode == "RGB" and image.height >= 40 and image.width >= image.height
    darkest, lightest = image.convert("L").getextrema()
    assert lightest - darkest > 60  # ink on a page, not a blank image


def test_fonts_without_a_glyph_are_left_out() -> None:
    fonts = font_pool(CHARSET)
    assert len(fonts) >= 5 and all(isinstance(f, Path) for f in fonts)
    assert all(covers(f, "aZ7") for f in fonts[:3])
    assert not covers(fonts[0], "a\U0001f600")  # no font here draws an emoji
    assert not covers(Path("/nonexistent.ttf"), "a")


def test_fonts_that_draw_two_characters_alike_are_left_out() -> None:
    capitals_only = STYLE_FONTS / "fresnel.ttf"  # easy-captcha-python's: a-z drawn as A-Z
    assert capitals_only.is_file()
    assert covers(capitals_only, "ABC123") and covers(capitals_only, "abc123")
    assert not covers(capitals_only, "aA") and not covers(capitals_only, CHARSET)
    assert capitals_only not in font_pool(CHARSET)
    assert capitals_only in font_pool(string.digits + string.ascii_uppercase)
    assert covers(font_pool(CHARSET)[0], "aaA")  # a character asked for twice is still one character


def test_mixed_drawing_is_reproducible_from_its_seed() -> None:
    def drawn(seed: int) -> list[tuple[str, bytes]]:
        return [(label, image.tobytes()) for label, image in draw_captchas(10, CHARSET, 4, 8, seed, style="mixed")]

    first = drawn(3)
    assert first == drawn(3) and first != drawn(4)
    assert all(4 <= len(label) <= 8 and set(label) <= set(CHARSET) for label, _ in first)


def test_kind_both_mixes_arithmetic_among_random_texts() -> None:
    labels = [label for label, _ in draw_captchas(80, CHARSET, 3, 10, 0, kind="both")]
    arithmetic = [label for label in labels if "=" in label]
    assert 1 <= len(arithmetic) <= 20  # ARITHMETIC_SHARE of 80 is 8
    assert all(set(label) <= set(ARITHMETIC_CHARSET) for label in arithmetic)
    assert all(3 <= len(label) <= 10 and set(label) <= set(CHARSET) for label in labels if "=" not in label)


def test_a_large_drawing_is_the_same_for_any_number_of_workers_above_one() -> None:
    def drawn(workers: int) -> list[tuple[str, bytes]]:
        pairs = drawing(12, CHARSET, 4, 6, 0, 160, 60, "random", "captcha", workers, chunk=5)
        return [(label, image.tobytes()) for label, image in pairs]

    two = drawn(2)
    assert len(two) == 12 and two == drawn(3)
    assert [label for label, _ in two[:5]] == [label for label, _ in draw_captchas(5, CHARSET, 4, 6, "0:0")]
    assert [label for label, _ in drawn(1)] == [label for label, _ in draw_captchas(12, CHARSET, 4, 6, 0)]
