"""Decoding and confidences of every head, on logits whose probabilities are known by hand."""

import numpy as np
import pytest

from captcha_ocr.reading.decoding import (
    CTCDecoder,
    JointDecoder,
    PositionDecoder,
    ctc_log_probability,
    log_softmax,
    restrict,
)
from captcha_ocr.reading.tokenizer import Tokenizer

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


def test_ctc_log_probability_sums_every_alignment_as_torch_does() -> None:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    log_probs = log_softmax(rng.normal(size=(4, 9, 3)) * 2)  # (B, T, C)
    labels = [[1, 2, 2], [1], [], [2, 1, 2, 1]]  # repeats need a blank between them; empty: all blanks
    targets = torch.tensor([label + [0] * (4 - len(label)) for label in labels])
    expected = -F.ctc_loss(torch.from_numpy(log_probs).transpose(0, 1), targets, torch.full((4,), 9),
                           torch.tensor([len(label) for label in labels]), blank=0, reduction="none")  # fmt: skip
    np.testing.assert_allclose(ctc_log_probability(log_probs, labels, blank=0), expected.numpy(), rtol=1e-6)
    # By hand, T = 2, "a": the paths "a-", "-a" and "aa" (0.5 * 0.3 + 0.4 * 0.6 + 0.5 * 0.6).
    two_steps = np.log(np.array([[[0.4, 0.5, 0.1], [0.3, 0.6, 0.1]]]))
    assert np.exp(ctc_log_probability(two_steps, [[1]], blank=0))[0] == pytest.approx(0.15 + 0.24 + 0.30)


def test_joint_confidence_is_the_lower_of_the_two_heads_probabilities_of_the_reading() -> None:
    position = [[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]]  # reads "ab" with 0.8 * 0.6 * 0.9
    agreeing = [[0.02, 0.96, 0.02], [0.96, 0.02, 0.02], [0.02, 0.02, 0.96], [0.96, 0.02, 0.02]]  # a - b -
    disagreeing = [[0.02, 0.96, 0.02], [0.96, 0.02, 0.02], [0.02, 0.96, 0.02], [0.96, 0.02, 0.02]]  # a - a -
    decoder = JointDecoder(TOKENIZER)
    for ctc, lower in ((agreeing, False), (disagreeing, True)):
        logits = np.log(np.array([position + ctc]))  # (1, L + T, C)
        texts, confidences, characters = decoder.read(logits)
        assert texts == ["ab"] and characters == [pytest.approx([0.8, 0.6])]  # the position head reads
        checked = float(np.exp(ctc_log_probability(np.log(np.array([ctc])), [[1, 2]], blank=0))[0])
        assert confidences[0] == pytest.approx(min(0.8 * 0.6 * 0.9, checked))
        assert bool(confidences[0] < 0.1) is lower  # a reading the CTC head does not see is uncertain


@pytest.mark.parametrize("decoder", [PositionDecoder, CTCDecoder])
def test_restricted_logits_read_only_allowed_characters_with_renormalised_probabilities(decoder) -> None:
    """Allowing only "b" (and the end / blank class): "a" steps read "b" where "b" beats the end
    class, and every probability is over the allowed classes alone."""
    logits = logits_of([[0.1, 0.6, 0.3], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1]])
    allowed = TOKENIZER.allowed("bz")  # z: not in the charset, ignored
    assert allowed.tolist() == [True, False, True]
    texts, confidences = decoder(TOKENIZER).decode(restrict(logits, allowed))
    assert texts == ["b"]  # step 1: b 0.3 > end 0.1; step 2: end 0.2 > b 0.1; step 3: end
    expected = {PositionDecoder: 0.75 * (2 / 3), CTCDecoder: 0.75}[decoder]  # position: b, then the end
    assert confidences[0] == pytest.approx(expected)
    distribution = decoder(TOKENIZER).distribution(restrict(logits, allowed))[0]
    assert distribution[:, 1].tolist() == [0, 0, 0]  # "a" is impossible everywhere
    assert distribution[0].tolist() == pytest.approx([0.25, 0, 0.75])


def test_allowing_no_character_of_the_charset_is_an_error() -> None:
    with pytest.raises(ValueError, match="none of the allowed characters '0123' is in the model's charset 'ab'"):
        TOKENIZER.allowed("0123")


def test_the_joint_distribution_is_the_position_heads() -> None:
    position = [[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]]
    ctc = [[0.9, 0.05, 0.05]] * 4
    distribution = JointDecoder(TOKENIZER).distribution(logits_of(position + ctc))
    assert distribution.shape == (1, 3, 3)
    assert distribution[0].tolist() == [pytest.approx(row) for row in position]
