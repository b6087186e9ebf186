import pytest
import torch

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
