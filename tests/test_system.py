import math

import pytest
import torch

from captcha_ocr.training.system import CaptchaSystem, text_metrics


def test_metrics_against_hand_computed_values() -> None:
    metrics = text_metrics("test/")
    # "226md" vs "226md": 0 errors; "abcde" vs "abcdx": 1 substitution; "nnnnn" vs "nnnn": 1 deletion.
    metrics.update(["226md", "abcdx", "nnnn"], ["226md", "abcde", "nnnnn"])
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values["test/cer"] == pytest.approx(2 / 15)
    assert values["test/whole_acc"] == pytest.approx(1 / 3)
    assert values["test/char_acc"] == pytest.approx((5 + 4 + 4) / 15)


def test_position_loss_ignores_positions_after_the_end() -> None:
    system = CaptchaSystem(charset="ab", min_length=1, max_length=3, head="position")
    targets = torch.tensor([[1, 0, 0]])  # "a", then the end class, then nothing
    logits = torch.zeros(1, 3, 3)
    logits[0, 2] = torch.tensor([0.0, 50.0, 0.0])  # nonsense after the end must not cost anything
    expected = math.log(3)  # uniform over 3 classes at the two counted positions
    assert system.loss(logits, targets).item() == pytest.approx(expected)
    assert system.loss(logits, targets, reduction="none").tolist() == pytest.approx([expected])


def test_position_decoding_and_confidence() -> None:
    system = CaptchaSystem(charset="ab", min_length=1, max_length=3, head="position")
    probs = torch.tensor([[[0.1, 0.8, 0.1], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]])  # "a", end, ignored
    prediction = system.decode(probs.log())
    assert prediction.texts == ["a"]
    assert prediction.confidences.tolist() == pytest.approx([0.8 * 0.5])


def test_ctc_loss_and_decoding() -> None:
    system = CaptchaSystem(charset="ab", min_length=1, max_length=3, head="ctc")
    path = torch.tensor([1, 1, 0, 2, 0])  # "ab"
    logits = torch.nn.functional.one_hot(path, 3).float()[None] * 20
    assert system.decode(logits).texts == ["ab"]
    assert system.loss(logits, torch.tensor([[1, 2, 0]])).item() < 1e-3
    assert system.loss(logits, torch.tensor([[2, 1, 0]])).item() > 10
