"""Greedy decoding of model logits into texts and confidences, in numpy so that the ONNX reader
runs without torch."""

from typing import Literal

import numpy as np

from captcha_ocr.tokenizer import Tokenizer


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def greedy_decode(
    logits: np.ndarray, tokenizer: Tokenizer, head: Literal["position", "ctc"]
) -> tuple[list[str], np.ndarray]:
    """Texts and confidences from logits (B, L, C) of the position head or (B, T, C) of CTC.

    The confidence is the probability of the greedy path: the product of the chosen classes'
    probabilities, for the position head up to and including the end class that closes the
    text (positions after it do not matter), for CTC over all time steps.
    """
    probs = softmax(logits.astype(np.float64))
    ids = probs.argmax(axis=-1)  # (B, L) or (B, T)
    best = probs.max(axis=-1)  # (B, L) or (B, T)
    if head == "ctc":
        return tokenizer.decode_ctc(ids), best.prod(axis=1)
    positions = np.arange(ids.shape[1])
    ends = np.where(ids == tokenizer.pad_id, positions, ids.shape[1]).min(axis=1)  # (B,)
    used = positions[None, :] <= ends[:, None]  # (B, L)
    return tokenizer.decode(ids), np.where(used, best, 1.0).prod(axis=1)
