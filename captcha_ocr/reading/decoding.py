"""Greedy decoding of each head's logits into texts and confidences, in numpy so that the ONNX
reader runs without torch. ``heads.py`` pairs every head with its decoder here."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping

import numpy as np

from captcha_ocr.reading.tokenizer import Tokenizer


def strided_length(size: int, strides: Iterable[int]) -> int:
    """The length of an axis after 3x3 convolutions with padding 1 and these strides: the rows
    of the network's last feature map, or the CTC head's time steps (from the width)."""
    for stride in strides:
        size = (size - 1) // stride + 1
    return size


def feature_map_size(spec: Mapping) -> tuple[int, int]:
    """(rows, columns) of the network's last feature map for a spec (``ModelSpec.to_dict()`` or an
    ONNX file's): the input size after the stem's stride and each stage's. The columns are the CTC
    head's time steps."""
    strides = [tuple(spec.get("stem_stride", (1, 1))), *(tuple(stride) for stride in spec["strides"])]
    rows = strided_length(spec["height"], (stride[0] for stride in strides))
    return rows, strided_length(spec["width"], (stride[1] for stride in strides))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits.astype(np.float64)))


def restrict(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Logits (B, S, C) in which the classes outside ``allowed`` (C,) bool can never win, for
    every head: decoding then reads only allowed characters, and every probability is over them."""
    return np.where(allowed, logits, -np.inf)


def greedy(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most probable class at every step of logits (B, S, C), and its probability: (B, S) each."""
    probs = softmax(logits)
    return probs.argmax(axis=-1), probs.max(axis=-1)


class Decoder(ABC):
    """Reads a head's logits into texts, confidences and per-character confidences."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def decode(self, logits: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Texts and confidences (B,) from logits (B, S, C)."""
        texts, confidences, _ = self.read(logits)
        return texts, confidences

    def character_confidences(self, logits: np.ndarray) -> list[list[float]]:
        """The probability of each character of the reading, in reading order."""
        return self.read(logits)[2]

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        """The probabilities of every class (padding / blank first, then the charset) at each step
        of the head that reads: (B, S, C)."""
        return softmax(logits)

    @abstractmethod
    def read(self, logits: np.ndarray) -> tuple[list[str], np.ndarray, list[list[float]]]:
        """Texts, confidences (B,) and per-character confidences from one pass."""


class GreedyDecoder(Decoder):
    """Reads the most probable class at every step. The confidence of a reading is the
    probability of its greedy path; a character's confidence is the probability of the step(s)
    that wrote it."""

    def read(self, logits: np.ndarray) -> tuple[list[str], np.ndarray, list[list[float]]]:
        ids, best = greedy(logits)
        characters = [self._characters(i, p) for i, p in zip(ids.tolist(), best.tolist(), strict=True)]
        return self._texts(ids), self._path_probability(ids, best), characters

    @abstractmethod
    def _texts(self, ids: np.ndarray) -> list[str]: ...

    @abstractmethod
    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _characters(self, ids: list[int], best: list[float]) -> list[float]: ...


class PositionDecoder(GreedyDecoder):
    """Logits (B, L, C): position ``i`` is the ``i``-th character; the first end class (the
    padding id) closes the text, and positions after it do not count."""

    def _texts(self, ids: np.ndarray) -> list[str]:
        return self.tokenizer.decode(ids)

    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray:
        positions = np.arange(ids.shape[1])
        ends = np.where(ids == self.tokenizer.pad_id, positions, ids.shape[1]).min(axis=1)  # (B,)
        used = positions[None, :] <= ends[:, None]  # (B, L): the characters and the end class
        return np.where(used, best, 1.0).prod(axis=1)

    def _characters(self, ids: list[int], best: list[float]) -> list[float]:
        pad = self.tokenizer.pad_id
        return best[: ids.index(pad) if pad in ids else len(ids)]


class CTCDecoder(GreedyDecoder):
    """Logits (B, T, C) over time steps with the padding id as the blank: repeats are merged,
    then blanks dropped. A character's confidence is the best step of the run that wrote it, and
    the reading's confidence the product of its characters' confidences, as for the position
    head. (The probability of the whole greedy path counts some 25 blank steps, the ones between
    two characters split between blank and character by nature, and falls to ~0.8 for readings
    whose every character is above 0.99; a threshold on it rejected 69 % of the right readings
    at 0.8. The price: a character the path skipped does not lower the confidence.)"""

    def _texts(self, ids: np.ndarray) -> list[str]:
        pad = self.tokenizer.pad_id
        rows = ids.tolist()
        return [self.tokenizer.text([i for t, i in enumerate(row) if (t == 0 or i != row[t - 1]) and i != pad])
                for row in rows]  # fmt: skip

    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray:
        rows = zip(ids.tolist(), best.tolist(), strict=True)
        return np.array([np.prod(self._characters(i, p)) for i, p in rows])  # (B,)

    def _characters(self, ids: list[int], best: list[float]) -> list[float]:
        characters: list[float] = []
        for t, (i, p) in enumerate(zip(ids, best, strict=True)):
            if i == self.tokenizer.pad_id:
                continue
            if t > 0 and ids[t - 1] == i:  # the same run: keep its best step
                characters[-1] = max(characters[-1], p)
            else:
                characters.append(p)
        return characters


def ctc_log_probability(log_probs: np.ndarray, labels: list[list[int]], blank: int) -> np.ndarray:
    """Log-probability that CTC outputs (B, T, C) read each label: the sum over every alignment
    (the CTC forward algorithm), for all images at once.

    Args:
        log_probs: Log-softmax of the logits (B, T, C).
        labels: Each image's class ids, without blanks.
        blank: The blank's class id.

    Returns:
        (B,) log-probabilities.
    """
    B, T, _ = log_probs.shape
    S = 2 * max((len(label) for label in labels), default=0) + 1
    extended = np.full((B, S), blank)  # (B, S): blank, l1, blank, l2, ..., blank
    for b, label in enumerate(labels):
        extended[b, 1 : 2 * len(label) : 2] = label
    emit = np.take_along_axis(log_probs, np.broadcast_to(extended[:, None], (B, T, S)), axis=2)  # (B, T, S)
    # a step may skip the blank between two different characters
    skip = np.zeros((B, S), dtype=bool)
    skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    alpha = np.full((B, S), -np.inf)
    alpha[:, :2] = emit[:, 0, :2]
    for t in range(1, T):
        stay, step, jump = alpha, np.full_like(alpha, -np.inf), np.full_like(alpha, -np.inf)
        step[:, 1:] = alpha[:, :-1]
        jump[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + emit[:, t]
    ends = np.array([2 * len(label) for label in labels])  # (B,): the last blank; the last character before it
    last_blank = alpha[np.arange(B), ends]
    last_character = np.where(ends > 0, alpha[np.arange(B), np.maximum(ends - 1, 0)], -np.inf)
    return np.logaddexp(last_blank, last_character)


class JointDecoder(Decoder):
    """Logits (B, L + T, C) of the joint head: the first ``max_length`` steps are the position
    head's, which reads; the rest are the CTC head's, which checks. A reading's confidence is the
    lower of the two heads' probabilities of that same text (for CTC, summed over every
    alignment), so that a reading the heads disagree on is uncertain."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self.position = PositionDecoder(tokenizer)

    def read(self, logits: np.ndarray) -> tuple[list[str], np.ndarray, list[list[float]]]:
        L = self.tokenizer.max_length
        texts, confidences, characters = self.position.read(logits[:, :L])
        ids = [self.tokenizer.ids(text) for text in texts]
        log_probs = log_softmax(logits[:, L:].astype(np.float64))  # (B, T, C)
        checked = np.exp(ctc_log_probability(log_probs, ids, self.tokenizer.pad_id))  # (B,)
        return texts, np.minimum(confidences, checked), characters

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits[:, : self.tokenizer.max_length])  # (B, L, C): the position head's


DECODERS: dict[str, type[Decoder]] = {"position": PositionDecoder, "ctc": CTCDecoder, "joint": JointDecoder}


def decoder_for(head: str, tokenizer: Tokenizer) -> Decoder:
    """The decoder of the head named in a model's spec."""
    if head not in DECODERS:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(DECODERS)}")
    return DECODERS[head](tokenizer)
