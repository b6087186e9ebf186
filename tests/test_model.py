import pytest
import torch

from captcha_ocr.data.augment import RandomAffine
from captcha_ocr.model import CaptchaNet


@pytest.mark.parametrize(("head", "expected"), [("position", (3, 5, 20)), ("ctc", (3, 32, 20))])
@pytest.mark.parametrize("size", [(32, 128), (50, 200)])
def test_output_shapes(head: str, expected: tuple[int, int, int], size: tuple[int, int]) -> None:
    model = CaptchaNet(num_classes=20, max_length=5, head=head)
    logits = model(torch.rand(3, 1, *size))
    time_steps = size[1] // 4  # two width strides of 2
    assert logits.shape == (expected if head == "position" else (3, time_steps, 20))


def test_channels_and_strides_must_pair() -> None:
    with pytest.raises(ValueError, match="one stride per stage"):
        CaptchaNet(20, 5, channels=(16, 32), strides=((2, 2),))


def test_augmentation_keeps_shape_and_without_change_is_identity() -> None:
    images = torch.rand(4, 1, 32, 128)
    assert torch.allclose(RandomAffine(0, 0, 0)(images), images, atol=1e-5)
    assert RandomAffine(3, 5, 0.1)(images).shape == images.shape


def test_augmentation_shift_moves_content_by_whole_pixels() -> None:
    images = torch.zeros(1, 1, 8, 16)
    images[..., 4, 8] = 1
    torch.manual_seed(0)
    shifted = RandomAffine(max_shift=2)(images)
    row, col = divmod(int(shifted.flatten().argmax()), 16)
    assert abs(row - 4) <= 2 and abs(col - 8) <= 2
