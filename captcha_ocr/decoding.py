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


def character_confidences(
    logits: np.ndarray, tokenizer: Tokenizer, head: Literal["position", "ctc"]
) -> list[list[float]]:
    """The probability of each character of the greedy reading, in reading order.

    For the position head, each character's probability at its position; for CTC, the highest
    probability over the run of time steps that emitted the character.
    """
    probs = softmax(logits.astype(np.float64))
    ids = probs.argmax(axis=-1)  # (B, L) or (B, T)
    best = probs.max(axis=-1)
    result = []
    for row_ids, row_best in zip(ids.tolist(), best.tolist(), strict=True):
        if head == "position":
            end = row_ids.index(tokenizer.pad_id) if tokenizer.pad_id in row_ids else len(row_ids)
            result.append(row_best[:end])
            continue
        characters: list[float] = []
        for t, (i, p) in enumerate(zip(row_ids, row_best, strict=True)):
            if i == tokenizer.pad_id:
                continue
            if t > 0 and row_ids[t - 1] == i:  # the same run: keep its best step
                characters[-1] = max(characters[-1], p)
            else:
                characters.append(p)
        result.append(characters)
    return result
