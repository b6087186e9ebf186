"""The broad augmentation policy of configs/crnn.yaml: every operation in it does what it is for."""

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from captcha_ocr.data.augment import Around, RandomStrokeWidth
from captcha_ocr.training.lightning_cli import CaptchaCLI

from .helpers import ROOT

CHANGED = 1e-3  # a pixel moved by more than this has changed


PAGE, STROKE = 0.9, 0.1


def pages(batch: int = 16) -> Tensor:
    """Light pages (B, 1, 32, 128) with dark vertical strokes 3 px wide across the middle."""
    images = torch.full((batch, 1, 32, 128), PAGE)
    for x in range(20, 108, 8):
        images[..., 8:24, x : x + 3] = STROKE
    return images


def ink(images: Tensor) -> Tensor:
    """Share of dark pixels of each image (B,)."""
    return (images < 0.5).flatten(1).float().mean(dim=1)


def grey(images: Tensor) -> Tensor:
    """Share of each image's pixels between the stroke and the page level (B,): edges softened."""
    return ((images > STROKE + 0.05) & (images < PAGE - 0.05)).flatten(1).float().mean(dim=1)


def changed(before: Tensor, after: Tensor) -> Tensor:
    """Share of changed pixels of each image (B,)."""
    return ((after - before).abs() > CHANGED).flatten(1).float().mean(dim=1)


def check_geometry(before: Tensor, after: Tensor, op: nn.Module) -> None:
    assert (changed(before, after) > 0.01).all()  # the strokes moved
    assert torch.allclose(ink(after), ink(before), rtol=0.5)  # moved, neither erased nor doubled
    assert (after[..., [0, -1], :] > 0.5).float().mean() > 0.9  # what comes in at the edges is page


def check_stroke_width(before: Tensor, after: Tensor, op: nn.Module) -> None:
    darkness = (after - before).flatten(1).sum(dim=1)  # (B,): ink lost (> 0) or gained (< 0)
    bolder, thinner = darkness < -1, darkness > 1  # half a pixel along the strokes, at least
    assert (bolder | thinner).all()  # every chosen image is one or the other
    assert bolder.any() and thinner.any()


def check_erasing(before: Tensor, after: Tensor, op: nn.Module) -> None:
    share = changed(before, after)
    largest = op.scale[1]
    assert (share <= largest + 0.01).all()  # a bounded patch, not the page
    assert (share > 0).float().mean() > 0.5  # a patch over page or strokes shows (it may fall on its own colour)
    moved = (after - before).abs() > CHANGED
    assert torch.all(after[moved] == op.value)


def check_lighting(before: Tensor, after: Tensor, op: nn.Module) -> None:
    page = before > 0.5
    spread = torch.stack([a[p].std() for a, p in zip(after, page, strict=True)])  # (B,) over each page
    assert (spread > 0.005).all()  # the page is no longer even
    assert (after[page] <= PAGE + 1e-6).all()  # darker only: a prepared page is already white
    assert all((a[p].mean() > a[~p].mean()).item() for a, p in zip(after, page, strict=True))  # ink stays darker


def check_invert(before: Tensor, after: Tensor, op: nn.Module) -> None:
    page = before > 0.5
    assert torch.allclose(after, 1 - before)
    assert after[page].max() < 0.5 < after[~page].min()  # the page level flipped


def check_tone(before: Tensor, after: Tensor, op: nn.Module) -> None:
    page = before > 0.5
    assert (changed(before, after) > 0).float().mean() > 0.5  # most images change tone
    assert all((a[p].min() > a[~p].max()).item() for a, p in zip(after, page, strict=True))  # order kept


def check_blur(before: Tensor, after: Tensor, op: nn.Module) -> None:
    assert (grey(after) > grey(before)).all()  # edges softened into grey


def check_jpeg(before: Tensor, after: Tensor, op: nn.Module) -> None:
    assert after.shape == before.shape
    assert (changed(before, after) > 0).all()  # artefacts
    assert ((after - before).abs().flatten(1).mean(dim=1) < 0.1).all()  # but the same picture


def check_salt_and_pepper(before: Tensor, after: Tensor, op: nn.Module) -> None:
    share = changed(before, after)
    assert (share > 0).all() and (share < 0.07).all()  # a few pixels each
    moved = (after - before).abs() > CHANGED
    assert torch.all((after[moved] == 0) | (after[moved] == 1))  # a salt or a pepper pixel


def check_noise(before: Tensor, after: Tensor, op: nn.Module) -> None:
    spread = (after - before).flatten(1).std(dim=1)
    assert ((spread > 0.02) & (spread < 0.2)).all()  # noise on every image, a few grey levels


def check_lines(before: Tensor, after: Tensor, op: nn.Module) -> None:
    assert ((after < before - CHANGED).flatten(1).any(dim=1)).float().mean() > 0.8  # most images get a line


CHECKS: dict[str, Callable[[Tensor, Tensor, nn.Module], None]] = {
    "RandomAffine": check_geometry,
    "RandomShear": check_geometry,
    "RandomPerspective": check_geometry,
    "RandomElasticTransform": check_geometry,
    "RandomStrokeWidth": check_stroke_width,
    "RandomErasing": check_erasing,
    "RandomLines": check_lines,
    "RandomLinearIllumination": check_lighting,
    "RandomLinearCornerIllumination": check_lighting,
    "RandomPlasmaShadow": check_lighting,
    "RandomInvert": check_invert,
    "RandomGamma": check_tone,
    "RandomContrast": check_tone,
    "RandomGaussianBlur": check_blur,
    "RandomMotionBlur": check_blur,
    "RandomJPEG": check_jpeg,
    "RandomSaltAndPepperNoise": check_salt_and_pepper,
    "RandomGaussianNoise": check_noise,
}


def inner(op: nn.Module) -> nn.Module:
    """The augmentation itself, out of its wrapper."""
    return op.augmentation if isinstance(op, Around) else op


def policy() -> list[nn.Module]:
    cli = CaptchaCLI(args=["--config", str(ROOT / "configs" / "crnn.yaml"), "--trainer.logger=false"], run=False)
    return list(cli.datamodule.augmentation)


POLICY = policy()


def always(op: nn.Module) -> nn.Module:
    """A copy of ``op`` that changes every image."""
    return with_probability(op, 1.0)


def with_probability(op: nn.Module, probability: float) -> nn.Module:
    op = copy.deepcopy(op)
    setattr(inner(op), "probability" if hasattr(inner(op), "probability") else "p", probability)
    return op


def name(op: nn.Module) -> str:
    return type(inner(op)).__name__


def test_the_policy_is_broad_and_gives_a_few_changes_per_image() -> None:
    names = {name(op) for op in POLICY}
    assert {"RandomAffine", "RandomPerspective", "RandomElasticTransform", "RandomErasing", "RandomInvert",
            "RandomLinearIllumination", "RandomPlasmaShadow", "RandomMotionBlur", "RandomJPEG",
            "RandomSaltAndPepperNoise"} <= names  # fmt: skip
    expected = sum(getattr(inner(op), "probability", None) or inner(op).p for op in POLICY)
    assert 2 <= expected <= 6  # changes per image, on average


@pytest.mark.parametrize("op", POLICY, ids=name)
def test_each_operation_of_the_policy_does_what_it_is_for(op: nn.Module) -> None:
    assert name(op) in CHECKS, f"{name(op)} has no check: add one to CHECKS"
    torch.manual_seed(0)
    before = pages()
    after = always(op)(before)
    assert after.shape == before.shape
    CHECKS[name(op)](before, after, op)


@pytest.mark.parametrize("op", POLICY, ids=name)
def test_each_operation_leaves_the_images_it_does_not_choose(op: nn.Module) -> None:
    images = pages(4)
    assert torch.allclose(with_probability(op, 0.0)(images), images, atol=1e-5)


def test_stroke_width_moves_each_stroke_by_half_pixel_steps_both_ways() -> None:
    torch.manual_seed(0)
    images = torch.ones(64, 1, 8, 32)  # white pages with a black bar 4 px wide
    images[..., 12:16] = 0.0
    changed = RandomStrokeWidth(probability=1.0, thinner=1.0, bolder=1.0)(images)
    width = (1 - changed[:, 0, 4]).sum(dim=1)  # (B,) ink across a middle row, in pixels
    assert torch.allclose(width, width.round(decimals=1), atol=1e-4)  # whole half pixels, no blur left
    assert set(width.mul(2).round().int().tolist()) == {6, 7, 9, 10}  # 4 px - 1, - 0.5, + 0.5, + 1


def test_stroke_width_refuses_widths_that_are_no_half_pixels() -> None:
    with pytest.raises(ValueError, match="thinner"):
        RandomStrokeWidth(thinner=0.3)
    with pytest.raises(ValueError, match="bolder"):
        RandomStrokeWidth(bolder=0.0)
