"""Greedy decoding and confidences of both heads, on logits whose probabilities are known by hand."""

import numpy as np
import pytest

from captcha_ocr.decoding import DECODERS, CTCDecoder, PositionDecoder, decoder_for
from captcha_ocr.heads import HEADS
from captcha_ocr.tokenizer import Tokenizer

TOKENIZER = Tokenizer("ab", min_length=1, max_length=3)  # ids: 0 pad / blank, 1 "a", 2 "b"


def logits_of(probabilities: list[list[float]]) -> np.ndarray:
    return np.log(np.array([probabilities]))  # (1, L, C): softmax(log p) = p


def test_position_head_confidences_stop_at_the_end_class() -> None:
    logits = logits_of([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]])  # "a", "b", end
    texts, confidences = PositionDecoder(TOKENIZER).decode(logits)
    assert texts == ["ab"]
    assert confidences[0] == pytest.approx(0.8 * 0.6 * 0.7)  # the end class counts, nothing after it
    assert PositionDecoder(TOKENIZER).character_confidences(logits) == [pytest.approx([0.8, 0.6])]


def test_ctc_character_confidence_is_the_best_step_of_its_run() -> None:
    steps = [[0.1, 0.6, 0.3], [0.05, 0.9, 0.05], [0.5, 0.2, 0.3], [0.2, 0.1, 0.7]]  # a a - b
    logits = logits_of(steps)
    texts, confidences = CTCDecoder(TOKENIZER).decode(logits)
    assert texts == ["ab"]
    assert confidences[0] == pytest.approx(0.9 * 0.7)  # each character's best step; blanks do not count
    assert CTCDecoder(TOKENIZER).character_confidences(logits) == [pytest.approx([0.9, 0.7])]


def test_ctc_merges_repeats_then_drops_blanks() -> None:
    paths = np.array([[0, 1, 1, 0, 1, 2, 2, 0], [2, 2, 2, 0, 0, 0, 0, 0], [0] * 8])
    logits = np.eye(3)[paths] * 20  # one-hot paths as logits (B, T, C)
    texts, _ = CTCDecoder(TOKENIZER).decode(logits)
    assert texts == ["aab", "b", ""]
    assert CTCDecoder(TOKENIZER).character_confidences(logits)[2] == []


def test_every_head_has_its_decoder_under_the_same_name() -> None:
    assert set(HEADS) == set(DECODERS)
    assert all(HEADS[name].decoder is DECODERS[name] for name in HEADS)
    with pytest.raises(ValueError, match="unknown head 'attention'"):
        decoder_for("attention", TOKENIZER)
