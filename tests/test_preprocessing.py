"""The one preprocessing path: page normalisation, text localisation, standardisation, and the
perturbations the robustness benchmark applies."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from captcha_ocr.analysis.perturbations import PERTURBATIONS, STRENGTHS
from captcha_ocr.data.dataset import CaptchaDataset
from captcha_ocr.model.export import export_onnx
from captcha_ocr.model.network import standardize
from captcha_ocr.reading.images import (
    _max_filter,
    crop_text,
    load_image,
    normalize_page,
    otsu_threshold,
    rules,
    run_lengths,
    text_box,
    to_grey,
)
from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.reading.tokenizer import Tokenizer

from .helpers import draw_captcha, model_spec, write_tiny_weights


def test_otsu_threshold_splits_two_grey_levels() -> None:
    histogram = [0] * 256
    histogram[30], histogram[200] = 100, 300
    threshold = otsu_threshold(histogram)
    assert 30 <= threshold < 200  # every level in between separates the two equally well
    assert otsu_threshold([0] * 100 + [50] + [0] * 155) == 0  # one level: nothing to split


def test_text_box_finds_the_ink_whatever_the_margin_and_polarity() -> None:
    page = Image.new("L", (100, 40), 230)
    page.paste(20, (30, 10, 70, 25))  # a dark block: the "text"
    left, top, right, bottom = text_box(page, trim=0.0, pad=0.0)
    assert (left, top, right, bottom) == (30, 10, 70, 25)
    assert text_box(ImageOps.invert(page), trim=0.0, pad=0.0) == (30, 10, 70, 25)  # light text on dark
    padded = text_box(page, trim=0.0, pad=0.2)  # 0.2 x 15 px = 3 px on every side
    assert padded == (27, 7, 73, 28)
    assert text_box(Image.new("L", (50, 20), 200)) == (0, 0, 50, 20)  # blank: the whole image


def test_run_lengths_give_each_pixel_its_run() -> None:
    mask = np.array([[1, 1, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=bool)
    assert run_lengths(mask).tolist() == [[2, 2, 0, 3, 3, 3], [0, 0, 0, 0, 0, 1]]
    assert run_lengths(mask.T).T.tolist() == [[1, 1, 0, 1, 1, 2], [0, 0, 0, 0, 0, 2]]  # runs down


def text_page() -> Image.Image:
    """A light page 200 x 60 with five dark "characters" 12 x 24 px, from (40, 18) to (148, 42)."""
    page = Image.new("L", (200, 60), 235)
    for x in range(40, 150, 24):
        page.paste(25, (x, 18, x + 12, 42))
    return page


TEXT = (40, 18, 148, 42)


def test_a_frame_round_the_captcha_is_not_text() -> None:
    for width in (1, 3, 6):
        framed = ImageOps.expand(text_page(), border=width, fill=40)
        left, top, right, bottom = text_box(framed, trim=0.0, pad=0.0)
        assert (left - width, top - width, right - width, bottom - width) == TEXT
        loose = np.asarray(crop_text(framed, trim=0.0, pad=1.0))  # a margin of 24 px takes the frame in
        assert loose[:20].min() > 200 and loose[-20:].min() > 200  # page above and below the text, no frame


def test_a_prompt_above_and_an_input_box_below_are_not_text() -> None:
    form = Image.new("L", (300, 150), 245)
    for x in range(20, 200, 9):  # a prompt: a line of small characters
        form.paste(50, (x, 8, x + 6, 18))
    form.paste(text_page(), (20, 24))
    ImageDraw.Draw(form).rectangle((20, 90, 220, 110), outline=120)  # the input box
    left, top, right, bottom = text_box(form, trim=0.0, pad=0.0)
    assert (left - 20, top - 24, right - 20, bottom - 24) == TEXT


def test_what_belongs_to_the_text_stays_in_its_box() -> None:
    page = text_page()
    page.paste(25, (44, 12, 48, 15))  # the dot of an i, 3 px above its stem
    page.paste(25, (64, 30, 76, 50))  # a character set lower
    assert text_box(page, trim=0.0, pad=0.0) == (40, 12, 148, 50)
    struck = text_page()
    ImageDraw.Draw(struck).line((0, 30, 199, 30), fill=25, width=2)  # a straight line through the text
    ink = np.asarray(struck) < 128
    assert rules(ink)[30, :40].all() and not rules(ink)[20:40, 40:52].any()  # the line, not the strokes it crosses
    assert text_box(struck, trim=0.0, pad=0.0) == TEXT


def test_margins_brightness_and_contrast_do_not_change_the_prepared_image() -> None:
    image = draw_captcha("226md", mode="RGB")
    reference = load_image(image, 32, 128).astype(np.int16)
    margin = ImageOps.expand(image, border=30, fill=(255, 255, 255))
    assert np.abs(load_image(margin, 32, 128).astype(np.int16) - reference).mean() < 3
    without_crop = load_image(margin, 32, 128, crop_to_text=False).astype(np.int16)
    assert np.abs(without_crop - reference).mean() > 20  # the crop is what makes the difference
    darker = load_image(ImageEnhance.Brightness(image).enhance(0.5), 32, 128)
    assert text_box(ImageEnhance.Brightness(image).enhance(0.5).convert("L")) == text_box(image.convert("L"))
    # After the network's standardisation, a darker copy is the same input.
    as_float = [torch.from_numpy(a).float()[None] / 255 for a in (reference.astype(np.uint8), darker)]
    assert (standardize(as_float[0]) - standardize(as_float[1])).abs().mean() < 0.05


def test_standardize_cancels_any_brightness_and_contrast_change() -> None:
    images = torch.rand(3, 1, 32, 128)
    changed = 0.4 * images + 0.3
    assert torch.allclose(standardize(images), standardize(changed), atol=0.05)
    out = standardize(images)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.isfinite(standardize(torch.full((1, 1, 8, 8), 0.7))).all()  # blank: no division by zero


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = draw_captcha("226md", mode="RGB")
    rotated = image.rotate(90, expand=True)  # stored on its side, as a phone would
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view": undoes the turn above
    rotated.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = load_image(image, 32, 128).astype(np.int16)
    assert np.abs(load_image(tmp_path / "phone.jpg", 32, 128).astype(np.int16) - upright).mean() < 8


@pytest.mark.parametrize("normalize", [False, True])
def test_dataset_torch_reader_and_onnx_reader_prepare_an_image_the_same(tmp_path: Path, normalize: bool) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for label in ("226md", "bcdef"):
        ImageOps.expand(draw_captcha(label), border=12, fill=(255, 255, 255, 255)).save(folder / f"{label}.png")
    ImageOps.invert(draw_captcha("cdefg", mode="RGB")).save(folder / "cdefg.png")  # light on dark
    files = sorted(folder.iterdir())
    dataset = CaptchaDataset(files, Tokenizer(), 32, 128, normalize=normalize)
    weights = write_tiny_weights(tmp_path / "tiny.pt", spec=model_spec(channels=(8, 16, 16), lstm_hidden=16,
                                                                         normalize=normalize))  # fmt: skip
    torch_reader = CaptchaReader(weights)
    onnx_reader = CaptchaReader(export_onnx(tmp_path / "tiny.onnx", weights), backend="onnx")
    assert torch_reader.spec.normalize == onnx_reader.spec.normalize == normalize  # the spec travels with the file
    for index, path in enumerate(files):
        from_dataset = dataset[index][0].numpy()  # (1, H, W) in [0, 1]
        np.testing.assert_array_equal(torch_reader.preprocess(path), from_dataset)
        np.testing.assert_array_equal(onnx_reader.preprocess(path), from_dataset)
    batch = np.stack([torch_reader.preprocess(path) for path in files])
    np.testing.assert_allclose(onnx_reader.logits(batch), torch_reader.logits(batch), atol=1e-4)


def shaded(image: Image.Image, darkest: float = 0.3) -> Image.Image:
    """The image with its left side in shadow: brightness rising linearly from ``darkest`` to 1."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    ramp = np.linspace(darkest, 1.0, pixels.shape[1])[None, :, None]
    return Image.fromarray((pixels * ramp).round().astype(np.uint8))


def test_max_filter_is_the_maximum_over_each_square() -> None:
    values = np.random.default_rng(0).integers(0, 255, (9, 23)).astype(np.int16)
    for size in (1, 2, 3, 5, 8, 9):
        padded = np.pad(values, (size // 2, size - 1 - size // 2), mode="edge")
        expected = [[padded[y : y + size, x : x + size].max() for x in range(23)] for y in range(9)]
        np.testing.assert_array_equal(_max_filter(values, size), np.array(expected))


def test_normalize_page_gives_dark_ink_on_an_even_white_page() -> None:
    page = Image.new("L", (120, 40), 90)  # a dark page with light strokes, lit unevenly
    for x in range(40, 80, 8):
        page.paste(230, (x, 12, x + 3, 28))
    lit = Image.fromarray((np.asarray(page, dtype=np.float32) * np.linspace(0.5, 1.0, 120)[None]).astype(np.uint8))
    flat = np.asarray(normalize_page(lit), dtype=np.int16)
    assert flat[:8].min() > 240 and flat[:, :30].min() > 240  # the page, shaded or not, is white
    assert flat[16:24, 40:80:8].max() < 150  # the strokes are dark, even in the shadow
    assert text_box(normalize_page(lit), trim=0.0, pad=0.0) == (40, 12, 75, 28)


def test_a_light_on_dark_or_shaded_copy_is_prepared_like_the_original() -> None:
    image = draw_captcha("226md", mode="RGB")
    reference = load_image(image, 32, 128, normalize=True).astype(np.int16)
    box = text_box(normalize_page(image.convert("L")))
    for copy in (ImageOps.invert(image), shaded(image), ImageOps.invert(shaded(image))):
        grey = to_grey(copy)
        assert np.abs(np.array(text_box(normalize_page(grey))) - box).max() <= 3
        assert np.abs(load_image(copy, 32, 128, normalize=True).astype(np.int16) - reference).mean() < 12
    # Without normalisation the shaded copy's box follows the shadow.
    assert np.abs(np.array(text_box(to_grey(shaded(image)))) - text_box(image.convert("L"))).max() > 10


def test_normalisation_keeps_every_real_captcha_dark_on_light_and_finds_its_box(real_data: Path) -> None:
    for path in sorted(real_data.glob("*.png"))[::20]:
        grey = to_grey(Image.open(path))
        flat = normalize_page(grey)
        assert np.asarray(flat).mean() > 170, path.name  # not inverted: the page is the light part
        box = np.array(text_box(flat))
        for copy in (ImageOps.invert(grey), to_grey(shaded(grey)), ImageOps.invert(to_grey(shaded(grey)))):
            assert np.abs(np.array(text_box(normalize_page(copy))) - box).max() <= 4, path.name


def test_random_lines_darken_a_line_in_the_chosen_share_of_images() -> None:
    from captcha_ocr.data.augment import RandomLines

    pages = torch.ones(400, 1, 32, 128)
    assert torch.equal(RandomLines(probability=0.0)(pages), pages)
    torch.manual_seed(0)
    lined = RandomLines(probability=0.5, darkness=0.1)(pages)
    changed = (lined < 1).flatten(1).any(dim=1)  # (B,)
    assert 0.4 < changed.float().mean() < 0.6
    assert lined.min() >= 0.1 - 1e-6 and lined.max() <= 1
    darkest = lined[changed].flatten(1).min(dim=1).values
    assert torch.all(darkest < 0.5)  # a line, not a faint tint
    assert torch.all((lined[changed] < 1).flatten(1).sum(dim=1) < 32 * 128 / 4)  # a line, not the page


@pytest.mark.parametrize("perturbation", PERTURBATIONS, ids=lambda p: p.name)
def test_perturbations_are_repeatable_and_each_strength_differs(perturbation) -> None:
    image = draw_captcha("226md", mode="RGB")
    outputs = set()
    for strength in STRENGTHS:
        first = perturbation(image, strength, np.random.default_rng(3))
        again = perturbation(image, strength, np.random.default_rng(3))
        assert first.mode == "RGB"
        assert (first.size, first.tobytes()) == (again.size, again.tobytes())  # the same seed, the same image
        outputs.add((first.size, first.tobytes()))
    assert len(outputs | {(image.size, image.tobytes())}) == 4  # mild, moderate and strong all change it
