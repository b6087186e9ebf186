"""The broad augmentation policy of configs/crnn.yaml: every operation in it does what it is for."""

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from captcha_ocr.data.augment import Around, RandomLines, RandomStrokeWidth, apply_policy, uses_detail
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


def bar_and_copy(bar: slice, detail_bar: slice) -> tuple[Tensor, Tensor]:
    """White pages (64, 1, 8, 32) with a black vertical bar, and detailed copies (16 x 64) whose
    bar (``detail_bar``, in the copy's pixels) need not be twice the image's."""
    images = torch.ones(64, 1, 8, 32)
    images[..., bar] = 0.0
    detailed = torch.ones(64, 1, 16, 64)
    detailed[..., detail_bar] = 0.0
    return images, detailed


def test_stroke_width_on_detailed_copies_changes_the_image_by_what_changed_in_the_copy() -> None:
    torch.manual_seed(0)
    images, detailed = bar_and_copy(slice(12, 16), slice(24, 32))  # 4 px; its copy 8 px at twice the size
    changed = RandomStrokeWidth(probability=1.0, thinner=1.0, bolder=1.0)(images, detailed)
    width = (1 - changed[:, 0, 4]).sum(dim=1)  # (B,) ink across a middle row
    assert set(width.mul(2).round().int().tolist()) == {6, 7, 9, 10}  # as without copies: the same steps


def test_stroke_width_on_detailed_copies_takes_the_ink_from_the_copy() -> None:
    # a copy with a one-pixel gap down the middle of its bar, as a speckled stroke of a file has:
    # thinning widens the gap, which the image (where the gap is averaged away) does not show
    torch.manual_seed(0)
    images, detailed = bar_and_copy(slice(12, 16), slice(24, 32))
    detailed[..., 28] = 1.0
    thinner = RandomStrokeWidth(probability=1.0, thinner=0.5, bolder=0.5)
    from_copy = thinner(images, detailed)
    torch.manual_seed(0)
    upsampled = thinner(images)
    thinned = from_copy.mean(dim=(1, 2, 3)) > images.mean(dim=(1, 2, 3))  # (B,): the thinned half
    assert thinned.any()
    assert (from_copy[thinned].mean() > upsampled[thinned].mean() + 0.01).item()  # more page: the gap opened
    assert from_copy.min() >= 0 and from_copy.max() <= 1


def test_stroke_width_refuses_copies_that_are_not_twice_the_size() -> None:
    with pytest.raises(ValueError, match="16 x 64"):
        RandomStrokeWidth(probability=1.0)(torch.ones(2, 1, 8, 32), torch.ones(2, 1, 8, 32))


def test_the_policy_gives_the_copies_to_a_first_stroke_width_only() -> None:
    seen: list[int] = []

    class Recording(RandomStrokeWidth):
        def forward(self, images: Tensor, detailed: Tensor | None = None) -> Tensor:
            seen.append(0 if detailed is None else 1)
            return images

    images, detailed = bar_and_copy(slice(12, 16), slice(24, 32))
    first, later = nn.Sequential(Recording(), RandomLines(0.0)), nn.Sequential(RandomLines(0.0), Recording())
    assert uses_detail(first) and not uses_detail(later) and not uses_detail(None)
    apply_policy(first, images, detailed)
    apply_policy(later, images, detailed)
    assert seen == [1, 0]  # after another operation the copies no longer match the images
