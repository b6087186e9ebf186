"""Greedy decoding and confidences, on logits whose probabilities are known by hand."""

import numpy as np
import pytest

from captcha_ocr.decoding import character_confidences, greedy_decode
from captcha_ocr.tokenizer import Tokenizer

TOKENIZER = Tokenizer("ab", min_length=1, max_length=3)  # ids: 0 pad / blank, 1 "a", 2 "b"


def logits_of(probabilities: list[list[float]]) -> np.ndarray:
    return np.log(np.array([probabilities]))  # (1, L, C): softmax(log p) = p


def test_position_head_confidences_stop_at_the_end_class() -> None:
    logits = logits_of([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]])  # "a", "b", end
    texts, confidences = greedy_decode(logits, TOKENIZER, "position")
    assert texts == ["ab"]
    assert confidences[0] == pytest.approx(0.8 * 0.6 * 0.7)  # the end class counts, nothing after it
    assert character_confidences(logits, TOKENIZER, "position") == [pytest.approx([0.8, 0.6])]


def test_ctc_character_confidence_is_the_best_step_of_its_run() -> None:
    steps = [[0.1, 0.6, 0.3], [0.05, 0.9, 0.05], [0.5, 0.2, 0.3], [0.2, 0.1, 0.7]]  # a a - b
    logits = logits_of(steps)
    texts, confidences = greedy_decode(logits, TOKENIZER, "ctc")
    assert texts == ["ab"]
    assert confidences[0] == pytest.approx(0.6 * 0.9 * 0.5 * 0.7)
    assert character_confidences(logits, TOKENIZER, "ctc") == [pytest.approx([0.9, 0.7])]
